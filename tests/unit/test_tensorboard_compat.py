"""TensorBoard compatibility pieces without a server: bins, bucket conversion, record framing, texts rules."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from runstream.tbcompat import event_pb2 as tb
from runstream.tensorboard import _to_hwc_uint8, tensorboard_buckets_to_edges, tensorflow_bins
from runstream.v1 import ingest_pb2 as pb
from runstream_service import tbimport
from runstream_service.limits import Limits
from runstream_service.validate import InvalidBatch, decode_batch


def test_tensorflow_bins_match_the_definition_and_tensorboardx() -> None:
    edges = tensorflow_bins()
    assert edges[len(edges) // 2] == 0.0
    assert (edges[1:] > edges[:-1]).all()
    assert edges[-1] < 1e20 <= edges[-1] * 1.1 and math.isclose(edges[len(edges) // 2 + 1], 1e-12)
    tensorboardx = pytest.importorskip("tensorboardX")
    writer = tensorboardx.SummaryWriter(write_to_disk=False)
    assert np.array_equal(edges, np.array(writer.default_bins))


def test_tensorboard_buckets_to_edges() -> None:
    edges, counts = tensorboard_buckets_to_edges(-2.0, np.array([0.0, 1.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert edges.tolist() == [-2.0, 0.0, 1.0, 3.0] and counts.tolist() == [1.0, 2.0, 3.0]
    # min not below the first limit: a left edge just below it
    edges, _ = tensorboard_buckets_to_edges(5.0, np.array([5.0, 6.0]), np.array([1.0, 1.0]))
    assert edges[0] < 5.0 and edges[1:].tolist() == [5.0, 6.0]
    # TensorFlow's -DBL_MAX / inf limits stay finite
    big = np.finfo(np.float64).max
    edges, counts = tensorboard_buckets_to_edges(-math.inf, np.array([-big, 0.0, math.inf]), np.array([1.0, 2, 3]))
    assert np.isfinite(edges).all() and (edges[1:] > edges[:-1]).all() and counts.sum() == 6


def test_images_are_converted_as_tensorboardx_converts_them() -> None:
    utils = pytest.importorskip("tensorboardX.utils")
    rng = np.random.default_rng(1)
    for shape, fmt in (((3, 5, 6), "CHW"), ((5, 6, 1), "HWC"), ((5, 6), "HW"), ((7, 3, 4, 5), "NCHW")):
        image = rng.random(shape, dtype=np.float32)
        expected = utils.convert_to_HWC(image, fmt)
        expected = (expected.astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
        assert np.array_equal(_to_hwc_uint8(image, fmt), expected), fmt


def _event_file(path: Path, count: int) -> bytes:
    tbimport.write_scalar_events(path, count, tags=2)
    return path.read_bytes()


def test_records_are_read_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tbimport, "CHUNK_RECORDS", 7)  # several parser calls
    monkeypatch.setattr(tbimport, "COMPACT_EVERY", 10)  # and several NumPy parts
    data = _event_file(tmp_path / "events.out.tfevents.1.h", 50)
    problems: list[str] = []
    run = tbimport.read_run("r", tmp_path, [tmp_path / "events.out.tfevents.1.h"])
    assert run.points == 50 and not run.problems and run.tags == {"loss/0": 0, "loss/1": 1}
    assert len(run.scalar_parts) > 2
    steps, values = (np.concatenate([part[i] for part in run.scalar_parts]) for i in (1, 3))
    assert steps.tolist() == [i // 2 for i in range(50)] and values.tolist() == [i * 0.5 for i in range(50)]
    assert run.last_wall == 1.7e9 + 49e-3
    (batch,) = tbimport.batches(run, "r", "w")
    assert np.frombuffer(batch.scalars.value, "<f8").tolist() == values.tolist()
    # A flipped byte in one record's data: that record is skipped and reported, the rest is read.
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    chunks = list(tbimport.read_records(bytes(corrupt), "f", problems))
    assert len(tb.EventList.FromString(b"".join(chunks)).event) == 50  # 51 records, one lost
    assert len(problems) == 1 and "CRC" in problems[0]
    # A truncated last record is reported, not fatal.
    problems.clear()
    chunks = list(tbimport.read_records(data[:-5], "f", problems))
    assert len(tb.EventList.FromString(b"".join(chunks)).event) == 50
    assert "truncated last record" in problems[0]


def test_masked_crc_matches_tensorboard() -> None:
    crc = pytest.importorskip("tensorboard.compat.tensorflow_stub.pywrap_tensorflow")
    for data in (b"", b"a", b"hello world" * 100):
        assert tbimport.masked_crc32c(data) == crc.masked_crc32c(data)


def test_import_is_deterministic(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    tbimport.write_scalar_events(tmp_path / "a" / "events.out.tfevents.1.h", 10)
    ((name, directory, files),) = tbimport.find_runs(tmp_path)
    run = tbimport.read_run(name, directory, files)
    first = [b.SerializeToString() for b in tbimport.batches(run, tbimport.run_id_for("p", run), "w")]
    second = [b.SerializeToString() for b in tbimport.batches(run, tbimport.run_id_for("p", run), "w")]
    assert first == second and tbimport.run_id_for("p", run) != tbimport.run_id_for("q", run)


def _texts_batch(texts: list[str]) -> pb.Batch:
    n = len(texts)
    return pb.Batch(
        run_id="r",
        writer_id="w",
        seq=1,
        tags=["t"],
        texts=pb.Texts(
            tag_index=np.zeros(n, "<u4").tobytes(),
            step=np.arange(n, dtype="<i8").tobytes(),
            wall_time=np.ones(n, "<f8").tobytes(),
            text=texts,
        ),
    )


def test_texts_validation() -> None:
    decoded = decode_batch(_texts_batch(["hello", "ünïcode"]))
    assert decoded.texts is not None and decoded.texts.text == ["hello", "ünïcode"] and decoded.points == 2
    with pytest.raises(InvalidBatch, match=r"texts.text\[0\]"):
        decode_batch(_texts_batch(["x" * 20]), Limits(max_text_bytes=10))
    with pytest.raises(InvalidBatch, match="NUL"):
        decode_batch(_texts_batch(["a\x00b"]))
    bad = _texts_batch(["a"])
    bad.texts.step = b"\x00" * 16
    with pytest.raises(InvalidBatch, match="texts: columns differ"):
        decode_batch(bad)
