"""TensorBoard compatibility against the real thing.

The oracle: logs written by the real tensorboardX, imported with `runstream import-tensorboard`, must
hold exactly what tensorboard's own EventAccumulator reads from the same files (values, steps, wall
times, NaN and Inf included). And one training script, run once with tensorboardX's SummaryWriter
(then imported) and once with runstream.tensorboard.SummaryWriter, must leave the same data.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from support import ServerProcess

tensorboardX = pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
tensor_util = pytest.importorskip("tensorboard.util.tensor_util")

WALL0 = 1_700_000_000.0
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-30, 3.4e38]


def training_script(writer: Any) -> None:
    """What a user's training loop logs; every call passes `walltime` so two writers agree exactly."""
    rng = np.random.default_rng(7)
    for step in range(200):
        wall = WALL0 + step
        writer.add_scalar("train/loss", 1.0 / (step + 1), step, walltime=wall)
        writer.add_scalar("train/lr", np.float32(0.1 * 0.99**step), np.int64(step), walltime=wall)
        writer.add_scalar("special", SPECIAL[step % len(SPECIAL)], step, walltime=wall)
        if step % 50 == 0:
            writer.add_scalars("compare", {"a": step * 2.0, "b": -step}, step, walltime=wall)
            values = rng.normal(size=2000) * (step + 1)
            writer.add_histogram("weights/tf", values, step, walltime=wall)
            writer.add_histogram("weights/auto", values, step, bins="auto", walltime=wall)
            writer.add_histogram("weights/int", values, step, bins=16, walltime=wall)
            chw = rng.integers(0, 256, size=(3, 12, 16), dtype=np.uint8)
            writer.add_image("img/chw", chw, step, walltime=wall)
            writer.add_image("img/hwc", chw.transpose(1, 2, 0), step, walltime=wall, dataformats="HWC")
            writer.add_image("img/hw", chw[0], step, walltime=wall, dataformats="HW")
            writer.add_images("img/batch", rng.integers(0, 256, size=(5, 1, 6, 7), dtype=np.uint8), step, walltime=wall)
            writer.add_text("notes", f"step **{step}**: ünïcode ✓", step, walltime=wall)
    writer.add_hparams({"lr": 0.1, "optimizer": "adam", "layers": 3}, {"hparam/accuracy": 0.75})


def import_logdir(logdir: Path, server: ServerProcess, project: str = "tb") -> str:
    command = [sys.executable, "-m", "runstream_service", "import-tensorboard", str(logdir)]
    result = subprocess.run(
        [*command, "--server", server.address, "--project", project],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout + result.stderr


def accumulate(directory: Path) -> Any:
    acc = event_accumulator.EventAccumulator(
        str(directory), size_guidance={k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    )
    acc.Reload()
    return acc


def plugin_tags(acc: Any, plugin: str) -> dict[str, bytes]:
    try:
        return dict(acc.PluginTagToContent(plugin))
    except KeyError:
        return {}


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def write_tensorboardx(logdir: Path) -> None:
    with tensorboardX.SummaryWriter(logdir=str(logdir)) as writer:
        training_script(writer)


def run_dirs(logdir: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(logdir.rglob("*tfevents*")):
        rel = path.parent.relative_to(logdir).as_posix()
        found[logdir.name if rel == "." else rel] = path.parent
    return found


def test_import_matches_event_accumulator(tmp_path: Path, server: ServerProcess) -> None:
    logdir = tmp_path / "logs"
    write_tensorboardx(logdir / "exp1")
    write_tensorboardx(logdir / "exp2")
    first = import_logdir(logdir, server)
    second = import_logdir(logdir, server)  # twice: nothing may be stored twice
    assert "already imported" in second and "already imported" not in first
    server.stop()
    checked = compare_with_accumulator(logdir, server.sql)
    assert all(checked.values()), checked
    # NaN and both infinities made it through
    specials = server.sql("SELECT count(*) FILTER (isnan(value)), count(*) FILTER (value = 'inf'::DOUBLE) FROM scalars")
    assert specials[0][0] > 0 and specials[0][1] > 0


def compare_with_accumulator(logdir: Path, sql: Any) -> dict[str, int]:
    """Every run directory under logdir, as EventAccumulator reads it, equals what the database holds."""
    runs = {name: (run_id, json.loads(config)) for run_id, name, config in sql("SELECT run_id, name, config FROM runs")}
    dirs = run_dirs(logdir)
    assert set(runs) == set(dirs), (runs, dirs)
    checked = {"scalars": 0, "histograms": 0, "images": 0, "texts": 0, "hparams": 0}
    for name, directory in dirs.items():
        run_id, config = runs[name]
        acc = accumulate(directory)
        tags = acc.Tags()
        expected_scalars = {t: [(e.step, e.wall_time, e.value) for e in acc.Scalars(t)] for t in tags["scalars"]}
        for tag in plugin_tags(acc, "scalars"):  # tensor-style (new_style) scalars: the value is a 0-d tensor
            expected_scalars[tag] = [
                (e.step, e.wall_time, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)
            ]
        stored_scalar_tags = {t for (t,) in sql("SELECT DISTINCT tag FROM scalars WHERE run_id = ?", [run_id])}
        assert stored_scalar_tags == set(expected_scalars)
        for tag, expected in expected_scalars.items():
            stored = sql(
                "SELECT step, wall_time, value FROM scalars WHERE run_id = ? AND tag = ? ORDER BY step, wall_time",
                [run_id, tag],
            )
            assert len(stored) == len(expected), tag
            for (s1, w1, v1), (s2, w2, v2) in zip(sorted(expected), stored):
                assert s1 == s2 and w1 == w2 and same_float(v1, v2), (tag, s1, v1, v2)
            checked["scalars"] += len(stored)
        for tag in tags["histograms"]:
            expected_h = acc.Histograms(tag)
            stored_h = sql(
                "SELECT step, wall_time, min, max, count, sum, sum_squares, bucket_limits, bucket_counts "
                "FROM histograms WHERE run_id = ? AND tag = ? ORDER BY step",
                [run_id, tag],
            )
            assert len(stored_h) == len(expected_h)
            for event, (step, wall, lo, hi, count, total, squares, limits, counts) in zip(expected_h, stored_h):
                h = event.histogram_value
                assert (event.step, event.wall_time) == (step, wall)
                assert (h.min, h.max, h.num, h.sum, h.sum_squares) == (lo, hi, count, total, squares)
                assert list(h.bucket_limit) == limits[1:] and list(h.bucket) == counts
                checked["histograms"] += 1
        for tag in tags["images"]:
            expected_i = acc.Images(tag)
            stored_i = sql(
                "SELECT step, wall_time, width, height, data FROM images WHERE run_id = ? AND tag = ? ORDER BY step",
                [run_id, tag],
            )
            assert [(e.step, e.wall_time, e.width, e.height, e.encoded_image_string) for e in expected_i] == [
                (s, w, wd, ht, bytes(d)) for s, w, wd, ht, d in stored_i
            ]
            checked["images"] += len(stored_i)
        text_tags = plugin_tags(acc, "text")
        for tag in text_tags:
            expected_t = [(e.step, e.wall_time, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors(tag)]
            stored_t = sql(
                "SELECT step, wall_time, text FROM texts WHERE run_id = ? AND tag = ? ORDER BY step",
                [run_id, tag.removesuffix("/text_summary")],
            )
            assert expected_t == stored_t
            checked["texts"] += len(stored_t)
        if plugin_tags(acc, "hparams"):
            assert config["hparams"] == {"lr": 0.1, "optimizer": "adam", "layers": 3.0}
            checked["hparams"] += 1
    return checked


def test_truncated_and_corrupt_records_are_reported(tmp_path: Path, server: ServerProcess) -> None:
    logdir = tmp_path / "logs"
    with tensorboardX.SummaryWriter(logdir=str(logdir / "killed")) as writer:
        for step in range(100):
            writer.add_scalar("x", float(step), step, walltime=WALL0 + step)
    (event_file,) = (logdir / "killed").glob("*tfevents*")
    data = event_file.read_bytes()
    event_file.write_bytes(data[:-7])  # a job killed mid-write
    output = import_logdir(logdir, server)
    assert "truncated last record" in output
    server.stop()
    assert server.sql("SELECT count(*), max(step) FROM scalars") == [(99, 98)]


def test_same_script_with_both_writers(tmp_path: Path, server: ServerProcess) -> None:
    from runstream.tensorboard import SummaryWriter

    logdir = tmp_path / "tbx"
    write_tensorboardx(logdir)
    import_logdir(logdir, server, project="tbx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the script uses nothing unsupported
        with SummaryWriter(log_dir="runs/ours", project="ours", server=server.address) as writer:
            training_script(writer)
    server.stop()
    runs = {(project, name): run_id for run_id, project, name in server.sql("SELECT run_id, project, name FROM runs")}
    tbx_main = runs[("tbx", "tbx")]
    ours_main = runs[("ours", "runs/ours")]

    def scalars(run_id: str) -> dict[str, list[tuple[Any, ...]]]:
        out: dict[str, list[tuple[Any, ...]]] = {}
        rows = server.sql(
            "SELECT tag, step, wall_time, value FROM scalars WHERE run_id = ? ORDER BY tag, step", [run_id]
        )
        for tag, step, wall, value in rows:
            out.setdefault(tag, []).append((step, wall, "nan" if math.isnan(value) else value))
        return out

    # TensorBoard's simple_value is a float32; runstream keeps the float64 it was given.
    ours = {
        tag: [(s, w, v if v == "nan" else float(np.float32(v))) for s, w, v in points]
        for tag, points in scalars(ours_main).items()
    }
    theirs = scalars(tbx_main)
    # tensorboardX's add_scalars writes a run per key (logdir/main_tag/key) with the tag main_tag;
    # runstream keeps them in the run as main_tag/key.
    for key in ("a", "b"):
        theirs[f"compare/{key}"] = scalars(runs[("tbx", f"compare/{key}")])["compare"]
    assert ours == theirs

    def histograms(run_id: str) -> list[tuple[Any, ...]]:
        rows = server.sql(
            "SELECT tag, step, wall_time, count, min, max, sum, bucket_limits, bucket_counts FROM histograms "
            "WHERE run_id = ? ORDER BY tag, step",
            [run_id],
        )
        out = []
        for tag, step, wall, count, lo, hi, total, limits, counts in rows:
            # Compare the non-empty buckets by their right edges (tensorboardX drops empty ones at the ends).
            nonzero = [(limit, c) for limit, c in zip(limits[1:], counts) if c]
            out.append((tag, step, wall, count, lo, hi, round(total, 6), nonzero))
        return out

    ours_h, theirs_h = histograms(ours_main), histograms(tbx_main)
    assert [h[:4] for h in ours_h] == [h[:4] for h in theirs_h]
    for a, b in zip(ours_h, theirs_h):
        if a[0] != "weights/int":  # equal-width bins: runstream spans [min, max] exactly as np.histogram does
            assert a[7] == b[7], a[0]
        assert a[4:7] == b[4:7] or a[0] == "weights/tf", a[0]  # tensorflow bins: min/max from the bucket edges

    def images(run_id: str) -> list[tuple[Any, ...]]:
        rows = server.sql(
            "SELECT tag, step, wall_time, width, height, data FROM images WHERE run_id = ? ORDER BY tag, step", [run_id]
        )
        return [
            (t, s, w, wd, ht, np.asarray(Image.open(io.BytesIO(d)).convert("RGB")).tobytes())
            for t, s, w, wd, ht, d in rows
        ]

    assert images(ours_main) == images(tbx_main)
    texts_sql = "SELECT tag, step, wall_time, text FROM texts WHERE run_id = ? ORDER BY tag, step"
    assert server.sql(texts_sql, [ours_main]) == server.sql(texts_sql, [tbx_main])
    configs = {
        project: json.loads(config)
        for project, name, config in server.sql("SELECT project, name, config FROM runs")
        if "hparams" in (config or "")
    }
    assert configs["ours"]["hparams"] == {"lr": 0.1, "optimizer": "adam", "layers": 3}
    assert configs["tbx"]["hparams"] == {"lr": 0.1, "optimizer": "adam", "layers": 3.0}
    hp_sql = (
        "SELECT s.value FROM scalars s JOIN runs r USING (run_id) WHERE r.project = ? AND s.tag = 'hparam/accuracy'"
    )
    assert server.sql(hp_sql, ["ours"]) == server.sql(hp_sql, ["tbx"]) == [(0.75,)]


def test_writer_naming_and_unknown_methods(server: ServerProcess) -> None:
    from runstream.tensorboard import SummaryWriter

    writer = SummaryWriter(comment="_lr0.1", server=server.address)
    assert writer.get_logdir().startswith("runs/") and writer.get_logdir().endswith("_lr0.1")
    with pytest.raises(AttributeError, match="add_something_new"):  # every writer method exists; no catch-all
        writer.add_something_new(1, 2)
    writer.add_scalar("x", 1.0)  # no global_step: step 0, as TensorBoard's writers
    writer.flush()
    writer.close()
    writer.close()  # twice is fine
    with SummaryWriter("runs/second", server=server.address) as second:
        second.add_scalar("y", np.array([2.5]), 3)
        second.add_text("notes", "first", 1)
        second.add_text("notes", "# second", 2)
        run_id = second.run.id
    # texts through the HTTP API
    base = f"http://127.0.0.1:{server.http_port}"
    with urllib.request.urlopen(f"{base}/api/tags?runs={run_id}") as reply:
        assert json.load(reply)["texts"] == ["notes"]
    with urllib.request.urlopen(f"{base}/api/texts?run={run_id}&tag=notes&limit=1") as reply:
        body = json.load(reply)
    assert [(t["step"], t["text"]) for t in body["texts"]] == [(2, "# second")]
    server.stop()
    assert server.sql("SELECT r.name, s.tag, s.step, s.value FROM scalars s JOIN runs r USING (run_id) ORDER BY 2") == [
        (writer.get_logdir(), "x", 0, 1.0),
        ("runs/second", "y", 3, 2.5),
    ]


def test_torch_writer_logs_match_event_accumulator(tmp_path: Path, server: ServerProcess) -> None:
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    torch = pytest.importorskip("torch")
    logdir = tmp_path / "torchlogs"
    with torch_tb.SummaryWriter(log_dir=str(logdir / "torch")) as writer:
        training_script(writer)
        for step in range(20):  # tensor-style scalars, float and double
            value = SPECIAL[step % len(SPECIAL)]
            writer.add_scalar("new_style", value, step, walltime=WALL0 + step, new_style=True)
            writer.add_scalar("double", value / 3, step, walltime=WALL0 + step, new_style=True, double_precision=True)
        writer.add_histogram("torch/tensor", torch.randn(500), 0, walltime=WALL0)
        writer.add_image("torch/image", torch.rand(3, 8, 8), 0, walltime=WALL0)
    import_logdir(logdir, server, project="torch")
    server.stop()
    checked = compare_with_accumulator(logdir, server.sql)
    assert checked["histograms"] and checked["images"] and checked["texts"] and checked["hparams"]
    stored = dict(server.sql("SELECT tag, count(*) FROM scalars GROUP BY tag"))
    assert stored["new_style"] == stored["double"] == 20
    doubles = server.sql("SELECT step, value FROM scalars WHERE tag = 'double' ORDER BY step")
    for step, value in doubles:  # double_precision: the float64 comes through unrounded
        assert same_float(value, SPECIAL[step % len(SPECIAL)] / 3)


def test_import_into_a_data_directory(tmp_path: Path) -> None:
    import duckdb

    logdir = tmp_path / "logs"
    write_tensorboardx(logdir / "exp")
    data = tmp_path / "data"
    for _ in range(2):
        command = [sys.executable, "-m", "runstream_service", "import-tensorboard", str(logdir), "--data", str(data)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr + result.stdout
    con = duckdb.connect(str(data / "runstream.duckdb"), read_only=True)
    try:
        checked = compare_with_accumulator(logdir, lambda q, p=None: con.execute(q, p or []).fetchall())
    finally:
        con.close()
    assert all(checked.values()), checked


def test_reimport_after_a_new_file_stores_nothing_twice(tmp_path: Path, server: ServerProcess) -> None:
    logdir = tmp_path / "logs"
    with tensorboardX.SummaryWriter(logdir=str(logdir / "live")) as writer:
        writer.add_scalar("x", 1.0, 0, walltime=WALL0)
    import_logdir(logdir, server)
    assert "already imported" in import_logdir(logdir, server)
    with tensorboardX.SummaryWriter(logdir=str(logdir / "live"), filename_suffix=".2") as writer:
        writer.add_scalar("x", 2.0, 1, walltime=WALL0 + 1)
    output = import_logdir(logdir, server)
    assert "live: imported" in output and ": 1 points" in output  # only the new file's point
    server.stop()
    assert server.sql("SELECT step, value FROM scalars ORDER BY step, value") == [(0, 1.0), (1, 2.0)]
