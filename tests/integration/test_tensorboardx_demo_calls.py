"""tensorboardX's examples/demo.py, as calls: the same SummaryWriter calls in the same order, with
synthetic tensors and a small local model in place of MNIST and torchvision's ResNet-18, against a real
server. Every tag it logs must be in the views afterwards, and no warning may be raised (runstream once
warned "not supported" here, and raised at `use_metadata` and at the `add_scalar` after `close()`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from support import ServerProcess

torch = pytest.importorskip("torch")

from tbx_demo import SmallNet, demo_calls  # noqa: E402


def test_demo_calls_land_in_the_views(server: ServerProcess, tmp_path: Path) -> None:
    from runstream.tensorboard import SummaryWriter

    json_path = tmp_path / "all_scalars.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        writer = SummaryWriter(server=server.address, project="demo")
        demo_calls(writer, json_path)
        writer.close()
    ours = [str(w.message) for w in caught if "runstream" in w.filename or "runstream" in str(w.message)]
    assert ours == []
    logdir = writer.get_logdir()
    run_id = writer.run.id

    exported = json.loads(json_path.read_text())
    assert sorted(exported) == [f"{logdir}/data/scalar_group/{k}" for k in ("arctanx", "xcosx", "xsinx")]
    rows = exported[f"{logdir}/data/scalar_group/xsinx"]
    assert [r[1] for r in rows] == list(range(100))
    assert rows[3][2] == pytest.approx(3 * np.sin(3))

    server.stop()

    def count(view: str, tag: str, extra: str = "") -> int:
        query = f"SELECT count(*) FROM {view} WHERE run_id = ? AND tag = ? {extra}"
        return int(server.sql(query, [run_id, tag])[0][0])

    assert server.sql("SELECT name, status FROM runs WHERE run_id = ?", [run_id]) == [(logdir, "finished")]
    for tag in ("data/scalar_systemtime", "data/scalar_customtime", *exported_tags()):
        assert count("scalars", tag, "AND step BETWEEN 0 AND 99") == 100, tag
    assert server.sql(
        "SELECT min(wall_time), max(wall_time) FROM scalars WHERE run_id = ? AND tag = 'data/scalar_customtime'",
        [run_id],
    ) == [(0.0, 99.0)]
    assert count("scalars", "implicit reopen writer") == 1
    assert count("images", "Image") == 10
    assert count("images", "imagebox_label", "AND boxes IS NOT NULL") == 10
    boxes = server.sql("SELECT boxes FROM images WHERE run_id = ? AND tag = 'imagebox_label' AND step = 30", [run_id])
    assert json.loads(boxes[0][0]) == {
        "boxes": [[10, 10, 100, 100], [101, 101, 200, 200]],
        "labels": ["abcde30", "fgh30"],
    }
    assert server.sql(
        "SELECT DISTINCT sample_rate, channels, frames FROM audio WHERE run_id = ? AND tag = 'myAudio'", [run_id]
    ) == [(44100.0, 1, 88200)]
    assert count("audio", "myAudio") == count("texts", "Text") == count("texts", "markdown Text") == 10
    for name, _ in SmallNet().named_parameters():
        assert count("histograms", name) == (0 if "bn" in name else 10), name
    assert count("pr_curves", "xoxo", "AND thresholds = 127") == 10
    assert count("pr_curves", "prcurve with raw data", "AND thresholds = 5") == 10
    assert server.sql(
        "SELECT tag, step, count(*) FROM embeddings WHERE run_id = ? GROUP BY ALL ORDER BY step", [run_id]
    ) == [("default", 0, 100), ("noMetadata", 1, 100), ("default", 2, 200)]
    assert server.sql(
        "SELECT tag, width, height, frames, fps, mime FROM videos WHERE run_id = ? ORDER BY tag", [run_id]
    ) == [("video", 112, 112, 48, 4.0, "image/apng"), ("video_1_fps", 112, 112, 48, 1.0, "image/apng")]
    assert server.sql(
        "SELECT tag, display_name, description FROM tag_info WHERE run_id = ? ORDER BY tag", [run_id]
    ) == [("data/scalar_customtime", "dudubird", ""), ("data/scalar_systemtime", "", "# markdown is supported!")]


def exported_tags() -> list[str]:
    return [f"data/scalar_group/{k}" for k in ("xsinx", "xcosx", "arctanx")]
