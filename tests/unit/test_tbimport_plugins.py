"""import-tensorboard's reading of the plugins' summaries, against what TensorBoard's EventAccumulator reads
from the same event files (written by the real tensorboardX and torch), down to the wire batch."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runstream.v1 import ingest_pb2 as pb
from runstream_service import tbimport

tensorboardX = pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
tensor_util = pytest.importorskip("tensorboard.util.tensor_util")
from tensorboardX.proto.summary_pb2 import Summary  # noqa: E402

WALL0 = 1_700_000_000.0


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A 16-bit PCM WAV, as tensorboardX's add_audio writes with soundfile."""
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(samples.shape[1])
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes((samples * 32767).astype("<i2").tobytes())
    return out.getvalue()


def gif_bytes(frames: int, fps: float) -> bytes:
    """An animated GIF, as tensorboardX's add_video writes it (through moviepy)."""
    images = [Image.fromarray(np.full((8, 10, 3), i * 40, np.uint8)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=1000 / fps, loop=0)
    return out.getvalue()


def write_plugins(logdir: Path) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    vertices = rng.random((2, 5, 3), dtype=np.float32)
    colors = rng.integers(0, 256, size=(2, 5, 3))
    faces = np.array([[[0, 1, 2], [2, 3, 4]]] * 2)
    layout = {
        "Losses": {"both": ["Multiline", ["loss/train", "loss/.*"]], "band": ["Margin", ["m", "m_lo", "m_hi"]]},
    }
    with tensorboardX.SummaryWriter(logdir=str(logdir)) as writer:
        file_writer = writer._get_file_writer()
        for step in range(3):
            wall = WALL0 + step
            labels = rng.integers(0, 2, size=100)
            writer.add_pr_curve("pr", labels, rng.random(100), step, num_thresholds=11, walltime=wall)
            writer.add_mesh("mesh", vertices, colors=colors, faces=faces, global_step=step, walltime=wall)
            writer.add_mesh("cloud", vertices[:1], global_step=step, walltime=wall)
            clip = wav_bytes(np.sin(np.arange(800) / 10)[:, None] * 0.5, 8000)
            audio = Summary.Audio(
                sample_rate=8000, num_channels=1, length_frames=800, encoded_audio_string=clip, content_type="audio/wav"
            )
            file_writer.add_summary(Summary(value=[Summary.Value(tag="sound", audio=audio)]), step, wall)
            gif = Summary.Image(height=8, width=10, colorspace=3, encoded_image_string=gif_bytes(3, 4))
            file_writer.add_summary(Summary(value=[Summary.Value(tag="clip", image=gif)]), step, wall)
            writer.add_scalar("named", step * 0.5, step, walltime=wall, display_name="Nice", summary_description="why")
        writer.add_pr_curve_raw(
            "raw", [5, 3], [4, 1], [0, 3], [0, 2], [0.5, 0.75], [1.0, 0.6], 7, num_thresholds=2, walltime=WALL0
        )
        writer.add_custom_scalars(layout)
    return {"vertices": vertices, "colors": colors, "faces": faces}


def read_batch(directory: Path) -> tuple[tbimport.RunData, pb.Batch]:
    ((name, found, files),) = tbimport.find_runs(directory)
    run = tbimport.read_run(name, found, files)
    assert not run.problems
    return run, tbimport.to_batch(run, "run", "writer", 1)


def accumulate(directory: Path) -> Any:
    acc = event_accumulator.EventAccumulator(
        str(directory), size_guidance={k: 0 for k in event_accumulator.DEFAULT_SIZE_GUIDANCE}
    )
    acc.Reload()
    return acc


def tags_of(batch: pb.Batch, message: Any) -> list[str]:
    return [batch.tags[i] for i in np.frombuffer(message.tag_index, "<u4")]


def test_plugins_match_event_accumulator(tmp_path: Path) -> None:
    logged = write_plugins(tmp_path)
    run, batch = read_batch(tmp_path)
    acc = accumulate(tmp_path)
    assert run.skipped == 0

    # PR curves: the [6, T] tensor, as float64, T per curve.
    curves = batch.pr_curves
    thresholds = np.frombuffer(curves.thresholds, "<u4")
    values = np.split(np.frombuffer(curves.values, "<f8"), np.cumsum(6 * thresholds)[:-1])
    expected = {tag: acc.Tensors(tag) for tag in acc.PluginTagToContent("pr_curves")}
    got = list(zip(tags_of(batch, curves), np.frombuffer(curves.step, "<i8"), np.frombuffer(curves.wall_time, "<f8")))
    assert got == [(tag, e.step, e.wall_time) for tag in ("pr", "raw") for e in expected[tag]][: len(got)]
    assert sorted(got) == sorted((tag, e.step, e.wall_time) for tag, events in expected.items() for e in events)
    for (tag, step, _), flat in zip(got, values):
        (event,) = [e for e in expected[tag] if e.step == step]
        array = tensor_util.make_ndarray(event.tensor_proto)
        assert array.shape == (6, flat.size // 6) and np.array_equal(array.astype(np.float64).reshape(-1), flat)

    # Audio: the WAV file as written.
    assert tags_of(batch, batch.audio) == ["sound"] * 3
    assert list(batch.audio.wav) == [e.encoded_audio_string for e in acc.Audio("sound")]

    # Video: the animated GIF (an image summary to TensorBoard), with its frame rate.
    assert tags_of(batch, batch.videos) == ["clip"] * 3 and "clip" not in tags_of(batch, batch.images)
    assert list(batch.videos.data) == [e.encoded_image_string for e in acc.Images("clip")]
    assert np.frombuffer(batch.videos.fps, "<f8").tolist() == [4.0] * 3

    # Meshes: a batch of 2 meshes per step (vertices, colours, faces) and a point cloud.
    meshes = batch.meshes
    mesh_tags = tags_of(batch, meshes)
    assert mesh_tags == ["mesh", "mesh", "cloud"] * 3
    assert np.frombuffer(meshes.sample, "<u4").tolist() == [0, 1, 0] * 3
    assert np.frombuffer(meshes.vertex_count, "<u4").tolist() == [5] * 9
    assert np.frombuffer(meshes.face_count, "<u4").tolist() == [2, 2, 0] * 3
    assert np.frombuffer(meshes.color_count, "<u4").tolist() == [5, 5, 0] * 3
    vertices = np.frombuffer(meshes.vertices, "<f4").reshape(9, 5, 3)
    for i in range(3):
        assert np.array_equal(vertices[3 * i : 3 * i + 2], logged["vertices"])
        assert np.array_equal(vertices[3 * i + 2], logged["vertices"][0])
    vertex_events = acc.Tensors("mesh_1")  # tensorboardX's tag for the vertices: NAME_1
    assert np.array_equal(tensor_util.make_ndarray(vertex_events[0].tensor_proto), logged["vertices"])
    colors = np.frombuffer(meshes.colors, "u1").reshape(6, 5, 3)
    assert np.array_equal(colors[:2], logged["colors"])
    faces = np.frombuffer(meshes.faces, "<u4").reshape(6, 2, 3)
    assert np.array_equal(faces[:2], logged["faces"])
    assert list(meshes.config) == [""] * 9  # no config_dict given

    # The custom-scalar layout, as the wire's JSON.
    assert json.loads(batch.custom_scalars_layout) == {
        "categories": [
            {
                "title": "Losses",
                "closed": False,
                "charts": [
                    {"title": "both", "multiline": {"tags": ["loss/train", "loss/.*"]}},
                    {"title": "band", "margin": {"series": [{"value": "m", "lower": "m_lo", "upper": "m_hi"}]}},
                ],
            }
        ]
    }
    assert "custom_scalars__config__" not in batch.tags

    # display_name and summary_description, once per tag; the scalar itself as any scalar.
    assert [(t.tag, t.display_name, t.description) for t in batch.tag_info] == [("named", "Nice", "why")]
    assert acc.SummaryMetadata("named").display_name == "Nice"
    assert np.frombuffer(batch.scalars.value, "<f8").tolist() == [e.value for e in acc.Scalars("named")]


def test_torch_add_tensor_is_a_tensor(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    logged = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7,
        "f64": torch.tensor([1.5, -2.25], dtype=torch.float64),
        "i64": torch.tensor([[1, -2], [3, 2**40]], dtype=torch.int64),
        "i32": torch.tensor([7, -8, 9], dtype=torch.int32),
        "b": torch.tensor([True, False]),
        "h": torch.tensor([0.5, 65504.0], dtype=torch.float16),
        "one": torch.tensor(3.0),  # a single value: still a tensor (plugin "tensor"), not a scalar
    }
    writer = SummaryWriter(str(tmp_path))
    for tag, tensor in logged.items():
        writer.add_tensor(tag, tensor, global_step=4, walltime=WALL0)
    writer.close()
    run, batch = read_batch(tmp_path)
    acc = accumulate(tmp_path)
    tensors = batch.tensors
    assert run.skipped == 0 and not batch.HasField("scalars")
    shapes = np.frombuffer(tensors.shape, "<u8").tolist()
    ndims = np.frombuffer(tensors.ndim, "<u4").tolist()
    at = 0
    for tag, dtype, ndim, data in zip(tags_of(batch, tensors), tensors.dtype, ndims, tensors.data):
        shape = tuple(shapes[at : at + ndim])
        at += ndim
        value = np.frombuffer(data, np.dtype(dtype).newbyteorder("<")).reshape(shape)
        expected = logged[tag].numpy()
        assert value.dtype == expected.dtype and np.array_equal(value, expected), tag
        if tag != "h":  # torch writes float16 as float32 bit patterns, which TensorBoard cannot read
            assert np.array_equal(tensor_util.make_ndarray(acc.Tensors(tag)[0].tensor_proto), expected)
    assert np.frombuffer(tensors.step, "<i8").tolist() == [4] * len(logged)


def test_a_still_gif_stays_an_image(tmp_path: Path) -> None:
    with tensorboardX.SummaryWriter(logdir=str(tmp_path)) as writer:
        still = Summary.Image(height=8, width=10, colorspace=3, encoded_image_string=gif_bytes(1, 4))
        writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag="still", image=still)]), 0, WALL0)
    _, batch = read_batch(tmp_path)
    assert tags_of(batch, batch.images) == ["still"] and not batch.HasField("videos")


def test_real_add_audio_when_soundfile_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    with tensorboardX.SummaryWriter(logdir=str(tmp_path)) as writer:
        writer.add_audio("voice", np.sin(np.arange(4000) / 5) * 0.3, 2, sample_rate=16000, walltime=WALL0)
    _, batch = read_batch(tmp_path)
    (wav,) = batch.audio.wav
    with wave.open(io.BytesIO(wav)) as file:
        assert (file.getframerate(), file.getnframes()) == (16000, 4000)
