"""TensorBoard's other plugins against the real thing: event files written by the real tensorboardX (and
torch), imported with `runstream import-tensorboard` into a real server, must hold in the views what
TensorBoard's EventAccumulator reads from the same files (PR curves, audio, videos, meshes, tensors,
tags' display names, custom-scalar layouts)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support import ServerProcess

tensorboardX = pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
tensor_util = pytest.importorskip("tensorboard.util.tensor_util")


def _unit_module(name: str) -> Any:
    """A module of tests/unit (its writers of the plugins' summaries), loaded by path: pytest puts only the
    folders of the modules it collects on sys.path."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "unit" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugins = _unit_module("test_tbimport_plugins")


def import_logdir(logdir: Path, server: ServerProcess) -> str:
    command = [sys.executable, "-m", "runstream_service", "import-tensorboard", str(logdir)]
    result = subprocess.run(
        [*command, "--server", server.address, "--project", "tb"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout + result.stderr


def accumulate(directory: Path) -> Any:
    acc = event_accumulator.EventAccumulator(
        str(directory), size_guidance={k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    )
    acc.Reload()
    return acc


def test_plugins_in_the_views_match_event_accumulator(tmp_path: Path, server: ServerProcess) -> None:
    logdir = tmp_path / "logs"
    logged = plugins.write_plugins(logdir / "exp")
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    tensor = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 3
    with SummaryWriter(str(logdir / "torch")) as writer:
        writer.add_tensor("t", tensor, global_step=2, walltime=plugins.WALL0)
    first = import_logdir(logdir, server)
    second = import_logdir(logdir, server)
    assert "already imported" in second and "already imported" not in first
    assert "skipped" not in first
    server.stop()
    sql = server.sql
    acc = accumulate(logdir / "exp")

    for tag in ("pr", "raw"):
        expected = [(e.step, e.wall_time, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
        stored = sql(
            "SELECT step, wall_time, thresholds, true_positives, false_positives, true_negatives, false_negatives, "
            "precision, recall FROM pr_curves WHERE tag = ? ORDER BY step",
            [tag],
        )
        assert len(stored) == len(expected) > 0
        for (step, wall, array), (s, w, thresholds, *rows) in zip(expected, stored):
            assert (step, wall, array.shape) == (s, w, (6, thresholds))
            assert np.array_equal(np.array(rows), array.astype(np.float64))

    audio = sql(
        "SELECT step, wall_time, sample_rate, channels, frames, wav FROM audio WHERE tag = 'sound' ORDER BY step"
    )
    assert [(s, w, bytes(wav)) for s, w, _, _, _, wav in audio] == [
        (e.step, e.wall_time, e.encoded_audio_string) for e in acc.Audio("sound")
    ]
    assert {(rate, channels, frames) for _, _, rate, channels, frames, _ in audio} == {(8000.0, 1, 800)}

    videos = sql("SELECT step, fps, frames, width, height, mime, data FROM videos WHERE tag = 'clip' ORDER BY step")
    assert [(s, bytes(d)) for s, *_, d in videos] == [(e.step, e.encoded_image_string) for e in acc.Images("clip")]
    assert {tuple(v[1:6]) for v in videos} == {(4.0, 3, 10, 8, "image/gif")}
    assert sql("SELECT count(*) FROM images WHERE tag = 'clip'") == [(0,)]

    meshes = sql(
        "SELECT step, sample, vertex_count, face_count, vertices, colors, faces, config FROM meshes "
        "WHERE tag = 'mesh' ORDER BY step, sample"
    )
    vertex_events = acc.Tensors("mesh_1")
    assert len(meshes) == 2 * len(vertex_events) == 6
    for step, sample, vertex_count, face_count, vertices, colors, faces, config in meshes:
        (event,) = [e for e in vertex_events if e.step == step]
        expected_vertices = tensor_util.make_ndarray(event.tensor_proto)[sample]
        assert (vertex_count, face_count, config) == (5, 2, "{}")
        assert np.array_equal(np.array(vertices, np.float32).reshape(5, 3), expected_vertices)
        assert np.array_equal(np.array(colors).reshape(5, 3), logged["colors"][sample])
        assert np.array_equal(np.array(faces).reshape(2, 3), logged["faces"][sample])
    clouds = sql("SELECT count(*), count(colors), count(faces) FROM meshes WHERE tag = 'cloud'")
    assert clouds == [(3, 0, 0)]

    (layout,) = sql("SELECT layout FROM custom_scalar_layouts")
    assert [chart["title"] for chart in json.loads(layout[0])["categories"][0]["charts"]] == ["both", "band"]
    metadata = acc.SummaryMetadata("named")
    assert sql("SELECT tag, display_name, description FROM tag_info") == [
        ("named", metadata.display_name, metadata.summary_description)
    ]

    ((dtype, shape, data),) = sql("SELECT dtype, shape, data FROM tensors WHERE tag = 't'")
    (event,) = accumulate(logdir / "torch").Tensors("t")
    expected_tensor = tensor_util.make_ndarray(event.tensor_proto)
    assert np.array_equal(np.frombuffer(bytes(data), dtype).reshape(shape), expected_tensor)
