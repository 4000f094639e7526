"""Encoding on the sender thread: what the SDK puts on the wire decodes to what was logged."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from runstream._encode import BinnedHistogram, RawHistogram, bin_values, encode_batch, encode_png
from runstream_service.validate import decode_batch


def test_scalar_rows_round_trip_through_the_server_decoder() -> None:
    a, b = ("loss", "acc"), ("lr",)
    rows = [
        (0, 10.0, a, (1.0, 0.5)),
        (1, 11.0, a, (math.nan, math.inf)),
        (1, 11.5, b, (0.1,)),
        (2, 12.0, a, (-math.inf, 0.0)),
    ]
    packed = [(step, wall, tags, np.array(values, "<f8").tobytes()) for step, wall, tags, values in rows]
    batch = decode_batch(encode_batch("run", 1, "writer", 7, packed).message)
    assert batch.scalars is not None
    got = sorted(
        zip(
            [batch.tags[i] for i in batch.scalars.tag_index],
            batch.scalars.step.tolist(),
            batch.scalars.wall_time.tolist(),
            batch.scalars.value.tolist(),
        ),
        key=lambda r: (r[1], r[0]),
    )
    want = sorted(
        ((tag, step, wall, value) for step, wall, tags, values in rows for tag, value in zip(tags, values)),
        key=lambda r: (r[1], r[0]),
    )
    assert [r[:3] for r in got] == [r[:3] for r in want]
    assert np.array_equal(np.array([r[3] for r in got]), np.array([r[3] for r in want]), equal_nan=True)
    assert (batch.rank, batch.writer_id, batch.seq) == (1, "writer", 7)


def test_histograms_round_trip() -> None:
    values = np.arange(100, dtype=np.float32)
    rows = [
        ("w", 3, 1.0, RawHistogram(values, 4)),
        ("g", 4, 2.0, BinnedHistogram(np.array([1.0, 0.0, 2.0]), np.array([0.0, 1.0, 2.0, 3.0]))),
        ("odd", 5, 3.0, RawHistogram(np.array([1.0, np.nan, 3.0]), 2)),
    ]
    h = decode_batch(encode_batch("run", 0, "w1", 1, [], rows).message).histograms
    assert h is not None
    batch_tags = decode_batch(encode_batch("run", 0, "w1", 1, [], rows).message).tags
    by_tag = {}
    for i, tag_index in enumerate(h.tag_index):
        edges = h.edges[h.offsets_edges[i] : h.offsets_edges[i + 1]].tolist()
        counts = h.counts[h.offsets_counts[i] : h.offsets_counts[i + 1]].tolist()
        stats = (h.step[i], h.count[i], h.min[i], h.max[i], h.sum[i], h.sum_squares[i])
        by_tag[batch_tags[tag_index]] = (edges, counts, stats)
    assert by_tag["w"][:2] == ([0.0, 24.75, 49.5, 74.25, 99.0], [25.0, 25.0, 25.0, 25.0])
    assert by_tag["w"][2] == (3, 100.0, 0.0, 99.0, 4950.0, float(np.dot(values.astype(float), values)))
    assert by_tag["g"] == ([0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 2.0], (4, 3.0, 0.0, 3.0, 5.5, 12.75))
    assert by_tag["odd"] == ([1.0, 2.0, 3.0], [1.0, 1.0], (5, 2.0, 1.0, 3.0, 4.0, 10.0))


def test_binning_leaves_out_non_finite_values() -> None:
    block = bin_values(np.array([1.0, math.nan, 2.0, math.inf]), 2)
    assert block is not None
    assert block.counts[0].tolist() == [1.0, 1.0]
    assert (block.min[0], block.max[0], block.sum[0]) == (1.0, 2.0, 3.0)
    assert bin_values(np.array([math.nan]), 2) is None


def test_png_keeps_every_pixel() -> None:
    rng = np.random.default_rng(1)
    for shape in [(9, 11, 3), (9, 11, 4), (9, 11, 1)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        decoded = np.array(Image.open(io.BytesIO(encode_png(image))))
        assert np.array_equal(decoded.reshape(shape), image)


def test_float_images_are_scaled_and_clipped() -> None:
    image = np.array([[[0.0], [0.5], [1.0], [2.0]]], dtype=np.float32)
    decoded = np.array(Image.open(io.BytesIO(encode_png(image))))
    assert decoded.tolist() == [[0, 128, 255, 255]]
