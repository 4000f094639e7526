"""The SDK against a real server: counts, values, ranks, images and histograms come back exactly."""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import runstream
from support import ServerProcess

TAGS = [f"metric/{i}" for i in range(10)]
STEPS = 25_000  # x 10 tags = 250,000 points per process


def expected_value(proc: int, tag: int, step: int) -> float:
    special = step % 997
    if special == 1:
        return math.nan
    if special == 2:
        return math.inf if tag % 2 else -math.inf
    return proc * 1e6 + tag * 1e3 + step * 1e-3


def _log_points(address: str, job: str, proc: int, rank: int) -> None:
    run = runstream.init(
        project="load", name=job, config={"proc": proc}, server=address, run_id=job, rank=rank, world_size=2
    )
    for step in range(STEPS):
        run.log({tag: expected_value(proc, t, step) for t, tag in enumerate(TAGS)}, step=step)
    report = run.finish()
    assert report.complete, report


def test_four_processes_two_ranks_exact_counts_and_values(server: ServerProcess) -> None:
    ctx = multiprocessing.get_context("spawn")
    plan = [("job-a", 0, 0), ("job-a", 1, 1), ("job-b", 2, 0), ("job-b", 3, 1)]
    procs = [ctx.Process(target=_log_points, args=(server.address, job, proc, rank)) for job, proc, rank in plan]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0
    server.stop()

    assert server.sql("SELECT count(*) FROM scalars")[0][0] == 4 * STEPS * len(TAGS)
    assert server.sql("SELECT count(*) FROM runs")[0][0] == 2
    for job, proc, rank in plan:
        rows = server.sql(
            "SELECT tag, step, value FROM scalars WHERE run_id = ? AND rank = ? ORDER BY tag, step", [job, rank]
        )
        assert len(rows) == STEPS * len(TAGS)
        got = np.array([r[2] for r in rows])
        want = np.array([expected_value(proc, int(tag.split("/")[1]), step) for tag, step, _ in rows])
        assert np.array_equal(got, want, equal_nan=True), f"values of {job} rank {rank} differ"
        assert [r[1] for r in rows[:STEPS]] == list(range(STEPS))
    # The writer's per-series summary agrees with the points themselves.
    summary = "SELECT series_id, points, first_step, last_step, first_wall, last_wall FROM series_stats ORDER BY 1"
    truth = (
        "SELECT series_id, count(*), min(step), max(step), min(wall_time), max(wall_time) "
        "FROM (SELECT series_id, step, wall_time FROM scalar_points "
        "UNION ALL SELECT series_id, step, wall_time FROM scalar_points_hot) GROUP BY 1 ORDER BY 1"
    )
    assert server.sql(summary) == server.sql(truth)
    duplicates = server.sql(
        "SELECT count(*) FROM (SELECT run_id, tag, step, rank FROM scalars GROUP BY ALL HAVING count(*) > 1)"
    )
    assert duplicates[0][0] == 0
    assert server.sql("SELECT count(*) FROM scalars WHERE isnan(value)")[0][0] == 4 * len(TAGS) * len(
        range(1, STEPS, 997)
    )


def test_ranks_join_one_run_and_rank_zero_owns_the_config(server: ServerProcess) -> None:
    worker = runstream.init(
        project="p", name="from-rank-1", config={"who": 1}, server=server.address, run_id="job", rank=1, world_size=2
    )
    chief = runstream.init(
        project="p", name="from-rank-0", config={"who": 0}, server=server.address, run_id="job", rank=0, world_size=2
    )
    assert worker.id == chief.id == "job"
    worker.log({"x": 1.0}, step=0)
    chief.log({"x": 0.0}, step=0)
    worker.finish()
    chief.finish()
    server.stop()
    assert server.sql("SELECT name, config::VARCHAR, world_size, status FROM runs") == [
        ("from-rank-0", '{"who": 0}', 2, "finished")
    ]
    assert server.sql("SELECT rank, value FROM scalars ORDER BY rank") == [(0, 0.0), (1, 1.0)]


def test_images_and_histograms_come_back_exactly(server: ServerProcess) -> None:
    rng = np.random.default_rng(3)
    images = {step: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for step in range(5)}
    values = rng.standard_normal(10_000).astype(np.float32)
    with runstream.init(project="p", name="media", server=server.address) as run:
        for step, image in images.items():
            run.log_image("samples", image, step=step)
        run.log_image("chw", np.transpose(images[0], (2, 0, 1)), step=0)
        run.log_histogram("weights", values, step=9, bins=32)
        run.log_histogram("given", (np.array([1.0, 2.0]), np.array([0.0, 0.5, 1.0])), step=9)
    server.stop()
    for step, width, height, mime, data in server.sql(
        "SELECT step, width, height, mime, data FROM images WHERE tag = 'samples'"
    ):
        assert (width, height, mime) == (224, 224, "image/png")
        assert np.array_equal(np.array(Image.open(io.BytesIO(data))), images[step])
    ((chw,),) = server.sql("SELECT data FROM images WHERE tag = 'chw'")
    assert np.array_equal(np.array(Image.open(io.BytesIO(chw))), images[0])
    ((count, lo, hi, total, limits, counts),) = server.sql(
        "SELECT count, min, max, sum, bucket_limits, bucket_counts FROM histograms WHERE tag = 'weights'"
    )
    want_counts, want_edges = np.histogram(values.astype(np.float64), bins=32)  # the SDK bins in float64
    assert count == 10_000 and counts == want_counts.tolist()
    assert np.allclose(limits, want_edges) and lo == float(values.min()) and hi == float(values.max())
    assert total == pytest.approx(float(values.astype(np.float64).sum()))
    assert server.sql("SELECT bucket_limits, bucket_counts FROM histograms WHERE tag = 'given'") == [
        ([0.0, 0.5, 1.0], [1.0, 2.0])
    ]


def test_init_says_plainly_when_the_server_is_unreachable(tmp_path: Path) -> None:
    from support import free_port

    started = time.monotonic()
    with pytest.raises(
        runstream.ServerUnavailableError, match="cannot reach the runstream server at 127.0.0.1:.*runstream serve"
    ):
        runstream.init(project="p", server=f"127.0.0.1:{free_port()}", connect_timeout=1.0, require_server=True)
    assert time.monotonic() - started < 10


def test_logging_after_finish_raises(server: ServerProcess) -> None:
    run = runstream.init(project="p", server=server.address)
    run.log({"a": 1.0})
    run.finish()
    with pytest.raises(runstream.RunFinishedError, match="finished"):
        run.log({"a": 2.0})
    with pytest.raises(runstream.RunFinishedError):
        run.log_image("i", np.zeros((2, 2), np.uint8))


def test_bad_input_raises_at_the_call(server: ServerProcess) -> None:
    with runstream.init(project="p", server=server.address) as run:
        with pytest.raises(ValueError, match="finite"):
            run.log({"a": 1.0}, step=math.nan)
        with pytest.raises(TypeError, match="tag must be a str"):
            run.log({3: 1.0})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="value of 'a' must be a number"):
            run.log({"a": "high"})
        with pytest.raises(ValueError, match="channels"):
            run.log_image("img", np.zeros((5, 5, 2), np.uint8))
        run.log({"a": 1.0}, step=5)
    server.stop()
    assert server.sql("SELECT step, value FROM scalars") == [(5, 1.0)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_cannot_log_through_its_parents_run(server: ServerProcess) -> None:
    run = runstream.init(project="p", server=server.address)
    run.log({"a": 1.0}, step=0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what logging did, then leave without running atexit hooks
        try:
            run.log({"a": 2.0}, step=1)
            message = b"no error"
        except runstream.ForkedProcessError as exc:
            message = str(exc).encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    message = os.read(read, 4096).decode()
    assert "runstream.init() in the child" in message
    run.log({"a": 3.0}, step=2)
    run.finish()
    server.stop()
    assert server.sql("SELECT step, value FROM scalars ORDER BY step") == [(0, 1.0), (2, 3.0)]
