"""A lake server keeps no scalar points of its own: its outbox holds them until its mover moves them to the
lake. So every read of scalars on it reads the lake and the unmoved outbox: hparams' last values,
/api/scalar_groups, the `scalars` view of /api/sql and `runstream export`, and the ReadScalars RPC
(SummaryWriter.export_scalars_to_json). Each is checked here through both servers of one lake, and against
a single-file server given the same points, whose reads are the reference.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from lake_http import get, sql_rows

import runstream
from runstream._transport import GrpcTransport, TransportError
from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig

STEPS = 2_000
# run id -> (its config, the server of the lake it is written through: 0 is A, 1 is B)
RUNS = {"lr1-a": ({"lr": 0.1}, 0), "lr1-b": ({"lr": 0.1}, 1), "lr2-a": ({"lr": 0.2}, 0)}


def values(run_id: str) -> np.ndarray:
    """The run's loss: a different curve per run, with NaN at every 97th step (no value in the means)."""
    seed = sum(map(ord, run_id))
    loss = np.sin(np.arange(STEPS) / (50 + seed % 17)) + seed % 5
    loss[::97] = math.nan
    return loss


def write(server: LocalServer, run_id: str) -> None:
    config, _ = RUNS[run_id]
    run = runstream.init(project="p", name=run_id, config=config, run_id=run_id, server=server.address)
    for step, value in enumerate(values(run_id)):
        run.log({"loss": float(value), "acc": float(step) / STEPS}, step=step)
    report = run.finish(timeout=30)
    assert report.unsent_points == 0 and report.rejected_batches == 0, report


def hparams(server: LocalServer, query: str) -> Any:
    """GET /api/hparams without the runs' creation times (each server's run was created at its own moment)."""
    found = get(server, f"/api/hparams?{query}")
    del found["runs"]["created_at"]
    return found


def same_groups(found: list[dict[str, Any]], reference: list[dict[str, Any]]) -> bool:
    """The same groups, columns and counts, and the same statistics up to rounding (sums in another order)."""
    exact = ("label", "runs", "x", "count")
    if [[g[k] for k in exact] for g in found] != [[g[k] for k in exact] for g in reference]:
        return False
    return all(
        np.allclose(np.array(g[k], float), np.array(r[k], float), rtol=1e-12, atol=1e-12, equal_nan=True)
        for g, r in zip(found, reference, strict=True)
        for k in ("mean", "std", "min", "max")
    )


def read_scalars(server: LocalServer, run_id: str) -> list[Any]:
    """ReadScalars of a run another server took: the server knows the lake's runs once its mover has read
    them (every two seconds at most), so NOT_FOUND is retried for a while."""
    transport = GrpcTransport([server.address])
    deadline = time.monotonic() + 15
    while True:
        try:
            return transport.read_scalars(run_id, timeout=30)
        except TransportError as exc:
            if exc.code != "NOT_FOUND" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def servers(tmp_path: Path, lake_config: LakeConfig) -> Iterator[tuple[LocalServer, LocalServer, LocalServer]]:
    """Lake servers A and B, and a single-file server, each given the same runs (A and B between them)."""
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path]
    a = LocalServer(tmp_path / "a", args).start()
    b = LocalServer(tmp_path / "b", args).start()
    single = LocalServer(tmp_path / "single").start()
    try:
        for run_id, (_, through) in RUNS.items():
            write((a, b)[through], run_id)
            write(single, run_id)
        # every point in the lake, so that each server of the lake reads each run
        want = [[len(RUNS) * STEPS * 2]]
        for _ in range(150):
            if sql_rows(a, "SELECT count(*) FROM lake.scalars") == want:
                break
            time.sleep(0.2)
        assert sql_rows(a, "SELECT count(*) FROM lake.scalars") == want
        yield a, b, single
    finally:
        a.close()
        b.close()
        single.close()


def test_every_scalar_read_of_either_lake_server_equals_the_single_files(
    servers: tuple[LocalServer, LocalServer, LocalServer], tmp_path: Path
) -> None:
    a, b, single = servers
    runs = ",".join(RUNS)
    reference_hparams = hparams(single, f"runs={runs}")
    metrics = {c["key"]: c for c in reference_hparams["columns"] if c["group"] == "metric"}
    assert metrics["acc"]["steps"] == [STEPS - 1] * 3 and metrics["acc"]["values"] == [(STEPS - 1) / STEPS] * 3
    for server in (a, b):
        assert hparams(server, f"runs={runs}") == reference_hparams, server
        assert hparams(server, "project=p") == hparams(single, "project=p"), server
        for axis in ("step", "wall", "relative"):
            groups = get(server, f"/api/scalar_groups?runs={runs}&tag=loss&group_by=lr&width=300&x={axis}")
            labels = [g["label"] for g in groups["groups"]]
            assert labels == ["0.1", "0.2"] and [g["runs"] for g in groups["groups"]] == [["lr1-a", "lr1-b"], ["lr2-a"]]
            if axis == "step":  # the same steps and values: the same columns (the wall times differ)
                reference = get(single, f"/api/scalar_groups?runs={runs}&tag=loss&group_by=lr&width=300&x=step")
                assert same_groups(groups["groups"], reference["groups"]), server
        # the documented `scalars` view: every run's points, through either server
        assert sql_rows(server, "SELECT run_id, count(*), sum(step) FROM scalars GROUP BY run_id ORDER BY run_id") == [
            [run_id, 2 * STEPS, STEPS * (STEPS - 1)] for run_id in sorted(RUNS)
        ]
        # ReadScalars (SummaryWriter.export_scalars_to_json): a run written through the other server
        series = read_scalars(server, "lr1-b" if server is a else "lr1-a")
        assert sorted(s.tag for s in series) == ["acc", "loss"]
        loss = next(s for s in series if s.tag == "loss")
        assert np.array_equal(np.frombuffer(loss.step, np.int64), np.arange(STEPS))
        expected = values("lr1-b" if server is a else "lr1-a")
        assert np.array_equal(np.frombuffer(loss.value, np.float64), expected, equal_nan=True)
    # export through B: the scalars of a run written through A
    dest = tmp_path / "export"
    command = [
        sys.executable,
        "-m",
        "runstream_service",
        "export",
        str(dest),
        "--url",
        f"http://127.0.0.1:{b.http_port}",
    ]
    subprocess.run([*command, "--run", "lr2-a"], check=True, capture_output=True, timeout=120)
    exported = duckdb.sql(f"SELECT count(*), count(DISTINCT tag) FROM '{dest}/scalars.parquet'").fetchall()
    assert exported == [(2 * STEPS, 2)]


def test_a_lake_servers_file_holds_no_scalar_points(
    servers: tuple[LocalServer, LocalServer, LocalServer],
) -> None:
    a, b, single = servers
    for server in (a, b, single):
        server.close()
    for server, kept in ((a, 0), (b, 0), (single, 2 * len(RUNS) * STEPS)):
        with duckdb.connect(str(server.data_dir / "runstream.duckdb"), read_only=True) as con:
            (points,) = con.execute(
                "SELECT (SELECT count(*) FROM scalar_points) + (SELECT count(*) FROM scalar_points_hot)"
            ).fetchall()[0]
        assert points == kept, server.data_dir
