"""Run.log_audio, log_video, log_pr_curve(_raw), log_mesh, log_tensor, image boxes, set_tag_info and
set_custom_scalars_layout: the wire batches they produce (through a capturing fake of the Transport
seam), and the mistakes they refuse at the call. Then SummaryWriter's own logic over them: use_metadata,
reopening after close(), the video grid, boxes with rescale, layouts, export_scalars_to_json."""

from __future__ import annotations

import io
import json
import threading
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runstream._run import Run
from runstream._settings import resolve
from runstream._transport import AckStream, Transport
from runstream.v1 import ingest_pb2 as pb


class _Acks:
    def __init__(self, owner: CapturingTransport, requests: Iterator[pb.Batch]) -> None:
        self._owner = owner
        self._requests = requests

    def __iter__(self) -> Iterator[pb.WriteAck]:
        for batch in self._requests:
            with self._owner.lock:
                self._owner.batches.append(batch)
            yield pb.WriteAck(writer_id=batch.writer_id, seq=batch.seq)

    def cancel(self) -> None:
        pass


class CapturingTransport(Transport):
    """Acknowledges every batch and keeps it, for the test to read."""

    def __init__(self) -> None:
        self.batches: list[pb.Batch] = []
        self.lock = threading.Lock()
        self.finished: list[str] = []
        self.series: list[pb.ScalarSeries] = []  # what read_scalars answers

    @property
    def server(self) -> str:
        return "fake"

    def open_run(self, request: pb.OpenRunRequest, timeout: float, wait_for_ready: bool = False) -> pb.OpenRunResponse:
        return pb.OpenRunResponse(run_id=request.run_id, created=True)

    def write(self, requests: Iterator[pb.Batch]) -> AckStream:
        return _Acks(self, requests)

    def finish_run(self, request: pb.FinishRunRequest, timeout: float) -> None:
        self.finished.append(request.run_id)

    def read_scalars(self, run_id: str, timeout: float) -> list[pb.ScalarSeries]:
        return list(self.series)

    def close(self) -> None:
        pass


@pytest.fixture
def run(tmp_path: Any) -> Iterator[tuple[Run, CapturingTransport]]:
    transport = CapturingTransport()
    settings = resolve({"server": "fake:1", "dir": str(tmp_path)})
    run = Run._open(settings, "media", "{}", 1.0, 1000, 1 << 28, transport=transport)
    yield run, transport
    run.finish(timeout=5)


def _sent(run: Run, transport: CapturingTransport) -> pb.Batch:
    """Everything sent so far as one batch: packed columns joined, repeated fields extended, tag indices
    mapped into one tag list (a batch's tags are its own dictionary)."""
    assert run.flush(10)
    merged = pb.Batch()
    tags: dict[str, int] = {}
    for batch in transport.batches:
        remap = np.array([tags.setdefault(t, len(tags)) for t in batch.tags], "<u4")
        for field, value in batch.ListFields():
            if field.message_type is None or field.is_repeated:
                continue
            out = getattr(merged, field.name)
            for inner, column in value.ListFields():
                if inner.is_repeated:
                    getattr(out, inner.name).extend(column)
                elif inner.name == "tag_index":
                    out.tag_index += remap[np.frombuffer(column, "<u4")].tobytes()
                else:
                    setattr(out, inner.name, getattr(out, inner.name) + column)
        merged.tag_info.extend(batch.tag_info)
        if batch.custom_scalars_layout:
            merged.custom_scalars_layout = batch.custom_scalars_layout
    merged.tags.extend(tags)
    return merged


def test_audio_is_a_wav_with_rate_channels_and_frames(run: tuple[Run, CapturingTransport]) -> None:
    r, transport = run
    t = np.arange(4410) / 44100
    r.log_audio("voice", np.sin(2 * np.pi * 440 * t), 44100, step=3)
    r.log_audio("stereo", np.stack([t, -t], 1).astype(np.float32) * 20, 8000.0, step=4)  # clipped to [-1, 1]
    batch = _sent(r, transport)
    assert len(batch.audio.wav) == 2
    assert np.frombuffer(batch.audio.step, "<i8").tolist() == [3, 4]
    with wave.open(io.BytesIO(batch.audio.wav[0])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes(), wav.getsampwidth()) == (44100, 1, 4410, 2)
    with wave.open(io.BytesIO(batch.audio.wav[1])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (8000, 2, 4410)
        pcm = np.frombuffer(wav.readframes(4410), "<i2").reshape(-1, 2)
    assert pcm[-1].tolist() == [32767, -32767]


def test_video_is_an_apng_that_keeps_frames_colour_and_fps(run: tuple[Run, CapturingTransport]) -> None:
    r, transport = run
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 12, 16, 3), dtype=np.uint8)
    r.log_video("clip", frames, fps=2.5, step=1)
    batch = _sent(r, transport)
    assert np.frombuffer(batch.videos.fps, "<f8").tolist() == [2.5]
    image = Image.open(io.BytesIO(batch.videos.data[0]))
    assert image.format == "PNG" and image.n_frames == 5 and image.size == (16, 12)
    for i in range(5):
        image.seek(i)
        assert image.info["duration"] == pytest.approx(400.0)
        assert np.array_equal(np.asarray(image.convert("RGB")), frames[i])  # lossless, full colour


def test_pr_curve_matches_tensorboardx(run: tuple[Run, CapturingTransport]) -> None:
    summary = pytest.importorskip("tensorboardX.summary")
    r, transport = run
    rng = np.random.default_rng(1)
    labels, predictions = rng.integers(0, 2, 200), rng.random(200)
    weights = rng.random(200)
    r.log_pr_curve("pr", labels, predictions, step=0)
    r.log_pr_curve("pr_w", labels, predictions, num_thresholds=11, weights=weights, step=0)
    r.log_pr_curve_raw("raw", [75, 64, 21, 5, 0], [150, 105, 18, 0, 0], [0, 45, 132, 150, 150], [0, 11, 54, 70, 75],
                       [0.33, 0.37, 0.53, 1.0, 0.0], [1.0, 0.85, 0.28, 0.06, 0.0], step=2)  # fmt: skip
    batch = _sent(r, transport)
    assert np.frombuffer(batch.pr_curves.thresholds, "<u4").tolist() == [127, 11, 5]
    values = np.frombuffer(batch.pr_curves.values, "<f8")
    expected = summary.compute_curve(labels, predictions, num_thresholds=127)
    assert np.allclose(values[: 6 * 127].reshape(6, 127), expected)
    expected_w = summary.compute_curve(labels, predictions, num_thresholds=11, weights=weights)
    assert np.allclose(values[6 * 127 : 6 * 138].reshape(6, 11), expected_w)
    assert values[6 * 138 : 6 * 138 + 5].tolist() == [75, 64, 21, 5, 0]


def test_meshes_of_a_batch_are_samples(run: tuple[Run, CapturingTransport]) -> None:
    r, transport = run
    vertices = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3)
    colors = np.full((2, 4, 3), 200, dtype=np.int64)
    faces = np.array([[[0, 1, 2], [1, 2, 3]]] * 2)
    r.log_mesh("shape", vertices, colors, faces, config={"camera": {"fov": 75}}, step=5)
    r.log_mesh("cloud", vertices[0], step=5)
    batch = _sent(r, transport)
    m = batch.meshes
    assert np.frombuffer(m.sample, "<u4").tolist() == [0, 1, 0]
    assert np.frombuffer(m.vertex_count, "<u4").tolist() == [4, 4, 4]
    assert np.frombuffer(m.face_count, "<u4").tolist() == [2, 2, 0]
    assert np.frombuffer(m.color_count, "<u4").tolist() == [4, 4, 0]
    assert np.array_equal(np.frombuffer(m.vertices, "<f4")[:24], vertices.reshape(-1))
    assert np.frombuffer(m.colors, "u1").tolist() == [200] * 24
    assert np.frombuffer(m.faces, "<u4").tolist() == [0, 1, 2, 1, 2, 3] * 2
    assert json.loads(m.config[0]) == {"camera": {"fov": 75}} and m.config[2] == ""


def test_tensors_keep_dtype_shape_and_bytes(run: tuple[Run, CapturingTransport]) -> None:
    r, transport = run
    a = np.arange(6, dtype=">i4").reshape(2, 3)  # big-endian in, little-endian on the wire
    r.log_tensor("t", a, step=0)
    r.log_tensor("b", np.array([True, False]), step=0)
    batch = _sent(r, transport)
    t = batch.tensors
    assert list(t.dtype) == ["int32", "bool"]
    assert np.frombuffer(t.ndim, "<u4").tolist() == [2, 1]
    assert np.frombuffer(t.shape, "<u8").tolist() == [2, 3, 2]
    assert np.frombuffer(t.data[0], "<i4").tolist() == list(range(6))


def test_boxes_tag_info_and_layout(run: tuple[Run, CapturingTransport]) -> None:
    r, transport = run
    r.log_image("plain", np.zeros((4, 4), np.uint8), step=0)
    r.log_image("boxed", np.zeros((4, 4), np.uint8), step=0, boxes=[[0, 0, 2, 2]], labels=["cat"])
    r.set_tag_info("loss", display_name="Loss", description="**mean** loss")
    layout = {"categories": [{"title": "c", "charts": [{"title": "m", "multiline": {"tags": ["loss.*"]}}]}]}
    r.set_custom_scalars_layout(layout)
    batch = _sent(r, transport)
    assert list(batch.images.boxes) == ["", '{"boxes":[[0.0,0.0,2.0,2.0]],"labels":["cat"]}']
    assert [(i.tag, i.display_name, i.description) for i in batch.tag_info] == [("loss", "Loss", "**mean** loss")]
    assert json.loads(batch.custom_scalars_layout) == layout


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.log_audio("a", np.zeros((10, 20)), 44100), "channels"),
        (lambda r: r.log_audio("a", np.zeros(10), 0), "sample_rate"),
        (lambda r: r.log_audio("a", np.array(["x"]), 44100), "real numbers"),
        (lambda r: r.log_video("v", np.zeros((2, 4, 4, 2)), 4), "channels"),
        (lambda r: r.log_video("v", np.zeros((2, 4, 4)), 0), "fps"),
        (lambda r: r.log_pr_curve("p", [0, 1, 2], [0.1, 0.2, 0.3]), "0 or 1"),
        (lambda r: r.log_pr_curve("p", [0, 1], [0.1, 1.5]), r"\[0, 1\]"),
        (lambda r: r.log_pr_curve("p", [0, 1], [0.1]), "one label per prediction"),
        (lambda r: r.log_pr_curve("p", [0, 1], [0.1, 0.2], num_thresholds=1), "num_thresholds"),
        (lambda r: r.log_pr_curve_raw("p", [1], [1], [1], [1], [1], [1]), "num_thresholds"),
        (lambda r: r.log_pr_curve_raw("p", [1, 2], [1], [1, 2], [1, 2], [1, 1], [1, 1]), "one length"),
        (lambda r: r.log_pr_curve_raw("p", [1, 2], [1, 2], [1, 2], [1, 2], [1.5, 1], [1, 1]), r"in \[0, 1\]"),
        (lambda r: r.log_audio("a", np.zeros(10), 800_000), "768,000 Hz"),
        (lambda r: r.log_image("i", np.zeros((4, 4)), boxes=[[3, 0, 1, 1]]), "x_min <= x_max"),
        (lambda r: r.set_tag_info("t", display_name="x" * 1001), "1,000 characters"),
        (lambda r: r.log_mesh("m", np.zeros((4, 2))), "B x N x 3"),
        (lambda r: r.log_mesh("m", np.zeros((4, 3)), colors=np.zeros((3, 3))), "one RGB colour per vertex"),
        (lambda r: r.log_mesh("m", np.zeros((4, 3)), faces=[[0, 1, 9]]), "index vertices 0 to 3"),
        (lambda r: r.log_tensor("t", np.zeros(2, np.complex64)), "dtype"),
        (lambda r: r.log_image("i", np.zeros((4, 4)), boxes=[[0, 0, 1]]), "N x 4"),
        (lambda r: r.log_image("i", np.zeros((4, 4)), boxes=[[0, 0, 1, 1]], labels=["a", "b"]), "one per box"),
        (lambda r: r.set_custom_scalars_layout({"categories": [{"title": "c", "charts": [{"title": "x"}]}]}), "margin"),
    ],
)
def test_mistakes_raise_at_the_call(run: tuple[Run, CapturingTransport], call: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call(run[0])


def test_what_the_sdk_takes_at_its_limits_the_server_decodes(run: tuple[Run, CapturingTransport]) -> None:
    """Each of the SDK's checks is at least as strict as the server's: a batch the SDK made is never
    refused (with the good points it carries) for what the call let through."""
    from runstream_service.validate import decode_batch

    r, transport = run
    r.log_audio("a", np.zeros(100), 768_000, step=0)
    r.log_pr_curve_raw("p", [3, 0], [1, 0], [0, 1], [0, 3], [0.75, float("nan")], [1.0, 0.0], step=0)
    boxes = np.tile([0.0, 0.0, 1.0, 1.0], (10_000, 1))
    r.log_image("i", np.zeros((4, 4)), step=0, boxes=boxes, labels=["x" * 1000] * 10_000)
    r.set_tag_info("a", display_name="n" * 1000, description="d" * 65536)
    assert r.flush(10)
    for batch in transport.batches:
        decode_batch(batch)


# -- SummaryWriter over the same fake --------------------------------------


@pytest.fixture
def writer(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, CapturingTransport]]:
    from runstream import _run
    from runstream.tensorboard import SummaryWriter

    transport = CapturingTransport()
    monkeypatch.setattr(_run, "for_settings", lambda settings: transport)
    w = SummaryWriter("runs/exp", server="fake:1")
    yield w, transport
    w.close()


def _scalars(batch: pb.Batch) -> list[tuple[str, int, float]]:
    """(tag, step, wall time) per point of a batch's by-row scalars."""
    s = batch.scalars
    tags = [batch.tags[i] for i in np.frombuffer(s.tag_index, "<u4")]
    per_row = np.frombuffer(s.row_points, "<u4")
    steps = np.repeat(np.frombuffer(s.step, "<i8"), per_row)
    walls = np.repeat(np.frombuffer(s.wall_time, "<f8"), per_row)
    return [(t, int(st), float(w)) for t, st, w in zip(tags, steps, walls)]


def test_use_metadata_supplies_step_and_walltime(writer: tuple[Any, CapturingTransport]) -> None:
    w, transport = writer
    with w.use_metadata(global_step=7):
        w.add_scalar("a", 1.0)
        w.add_scalar("b", 1.0, walltime=5.0)
        w.add_scalar("c", 1.0, 9)  # its own step wins
        w.add_text("t", "x")
        with pytest.raises(RuntimeError, match="nest"):
            with w.use_metadata(global_step=8):
                pass
    with w.use_metadata(walltime=3.0):
        w.add_scalar("d", 1.0)
    with pytest.raises(ValueError, match="global_step or walltime"):
        with w.use_metadata():
            pass
    w.add_scalar("e", 1.0)  # no metadata any more: step 0, as there
    batch = _sent(w.run, transport)
    points = {tag: (step, wall) for tag, step, wall in _scalars(batch)}
    assert points["a"][0] == 7 and points["b"] == (7, 5.0) and points["c"][0] == 9
    assert points["d"] == (0, 3.0) and points["e"][0] == 0
    assert np.frombuffer(batch.texts.step, "<i8").tolist() == [7]


def test_logging_after_close_reopens_the_same_run(writer: tuple[Any, CapturingTransport]) -> None:
    w, transport = writer
    w.add_scalar("x", 1.0, 0)
    first = w.run
    w.close()
    w.close()  # twice is fine, as there
    w.add_scalar("implicit reopen writer", 100, 0)
    assert w.run is not first and w.run.id == first.id
    w.flush()
    writers = {(b.run_id, b.writer_id) for b in transport.batches}
    assert len(writers) == 2 and len({run for run, _ in writers}) == 1
    assert transport.finished == [first.id]


def test_video_grid_matches_tensorboardx(writer: tuple[Any, CapturingTransport]) -> None:
    utils = pytest.importorskip("tensorboardX.utils")
    w, transport = writer
    rng = np.random.default_rng(2)
    video = rng.integers(0, 256, size=(3, 4, 1, 6, 5), dtype=np.uint8)  # N T C H W
    w.add_video("v", video, 0, fps=1)
    batch = _sent(w.run, transport)
    expected = np.round(utils._prepare_video(video) * 255).astype(np.uint8)  # T x H' x W' x C
    image = Image.open(io.BytesIO(batch.videos.data[0]))
    assert image.n_frames == 4 and image.size == (expected.shape[2], expected.shape[1])
    for t in range(4):
        image.seek(t)
        assert np.array_equal(np.asarray(image), expected[t, :, :, 0])
    assert np.frombuffer(batch.videos.fps, "<f8").tolist() == [1.0]


def test_image_with_boxes_keeps_boxes_and_scales_them(writer: tuple[Any, CapturingTransport]) -> None:
    w, transport = writer
    image = np.full((3, 10, 20), 0.5)
    w.add_image_with_boxes("b", image, np.array([[1, 2, 3, 4]]), 0, rescale=2, labels=["cat"])
    w.add_image_with_boxes("c", image, np.array([[1, 2, 3, 4]]), 0, labels=["a", "b"])  # mismatch: labels dropped
    batch = _sent(w.run, transport)
    assert Image.open(io.BytesIO(batch.images.data[0])).size == (40, 20)
    assert json.loads(batch.images.boxes[0]) == {"boxes": [[2.0, 4.0, 6.0, 8.0]], "labels": ["cat"]}
    assert json.loads(batch.images.boxes[1]) == {"boxes": [[1.0, 2.0, 3.0, 4.0]]}


def test_custom_scalar_charts_add_to_the_layout(writer: tuple[Any, CapturingTransport]) -> None:
    w, transport = writer
    w.add_custom_scalars({"Taiwan": {"twse": ["Multiline", ["twse/0050", "twse/2330"]]}})
    w.add_custom_scalars_multilinechart(["loss/.*"])
    w.add_custom_scalars_marginchart(["m", "lo", "hi"], category="Taiwan", title="band")
    batch = _sent(w.run, transport)
    assert json.loads(transport.batches[-1].custom_scalars_layout) == {
        "categories": [
            {
                "title": "Taiwan",
                "closed": False,
                "charts": [
                    {"title": "twse", "multiline": {"tags": ["twse/0050", "twse/2330"]}},
                    {"title": "band", "margin": {"series": [{"value": "m", "lower": "lo", "upper": "hi"}]}},
                ],
            },
            {
                "title": "default",
                "closed": False,
                "charts": [{"title": "untitled", "multiline": {"tags": ["loss/.*"]}}],
            },
        ]
    }
    assert batch.custom_scalars_layout
    with pytest.raises(ValueError, match="3 tags"):
        w.add_custom_scalars_marginchart(["a", "b"])


def test_display_name_is_sent_once_per_change(writer: tuple[Any, CapturingTransport]) -> None:
    w, transport = writer
    for step in range(3):
        w.add_scalar("s", 1.0, step, display_name="Loss", summary_description="# md")
    w.add_scalar("s", 1.0, 3, display_name="Loss 2")
    batch = _sent(w.run, transport)
    assert [(i.display_name, i.description) for i in batch.tag_info] == [("Loss", "# md"), ("Loss 2", "")]


def test_export_scalars_to_json_writes_tensorboardx_layout(
    writer: tuple[Any, CapturingTransport], tmp_path: Any
) -> None:
    w, transport = writer
    w.add_scalars("group", {"a": 1.0}, 0)
    w.add_scalar("single", 1.0, 0)  # tensorboardX exports add_scalars' tags only

    def series(tag: str, steps: list[int]) -> pb.ScalarSeries:
        return pb.ScalarSeries(
            tag=tag,
            rank=0,
            step=np.array(steps, "<i8").tobytes(),
            wall_time=np.array([10.0 + s for s in steps], "<f8").tobytes(),
            value=np.array([s / 2 for s in steps], "<f8").tobytes(),
        )

    transport.series = [series("group/a", [0, 1]), series("single", [0])]
    path = tmp_path / "all.json"
    w.export_scalars_to_json(str(path))
    assert json.loads(path.read_text()) == {"runs/exp/group/a": [[10.0, 0, 0.0], [11.0, 1, 0.5]]}
    transport.series = [series("group/a", [0, 1, 2])]
    w.export_scalars_to_json(str(path))  # as there: only what came since the last export
    assert json.loads(path.read_text()) == {"runs/exp/group/a": [[12.0, 2, 1.0]]}


def test_add_images_takes_a_list_of_images(writer: tuple[Any, CapturingTransport]) -> None:
    w, transport = writer
    w.add_images("list", [np.zeros((3, 4, 5)), np.ones((3, 4, 5))], 0, dataformats="CHW")
    with pytest.raises(ValueError, match="CHW"):
        w.add_images("list", [np.zeros((3, 4, 5))], 0)
    batch = _sent(w.run, transport)
    assert Image.open(io.BytesIO(batch.images.data[0])).size == (10, 4)  # one row of two
