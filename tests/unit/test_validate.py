"""Unit and property tests of `decode_batch` (service/runstream_service/validate.py), without a server.

REJECTED is the full table of the validation rules; tests/integration/test_validation.py sends one rule of
each group to a live server."""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from runstream.v1 import ingest_pb2 as pb
from runstream_service.limits import DEFAULT_LIMITS, Limits
from runstream_service.validate import DecodedBatch, InvalidBatch, decode_batch

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
INT64_MAX = 2**63 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def u4(values: Sequence[int]) -> bytes:
    return np.asarray(values, dtype="<u4").tobytes()


def i8(values: Sequence[int]) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()


def f8(values: Sequence[float]) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def encode_image(fmt: str, width: int = 5, height: int = 3, mode: str = "RGB") -> bytes:
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = (np.arange(width * height * channels) * 29 % 256).astype(np.uint8)
    out = io.BytesIO()
    Image.frombytes(mode, (width, height), pixels.tobytes()).save(out, format=fmt)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    return PNG_MAGIC + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


PNG = encode_image("PNG")
JPEG = encode_image("JPEG", 4, 7)


def valid_batch() -> pb.Batch:
    """2 tags; 3 scalars; 2 histograms of 3 and 1 buckets (4 counts, 6 edges); 2 images (PNG 5x3, JPEG 4x7)."""
    return pb.Batch(
        run_id="run",
        rank=3,
        writer_id="writer",
        seq=9,
        tags=["loss", "weights"],
        scalars=pb.Scalars(
            tag_index=u4([0, 1, 0]),
            step=i8([0, 5, INT64_MAX]),
            wall_time=f8([1.5, math.nan, 3.5]),
            value=f8([math.nan, math.inf, -math.inf]),
        ),
        histograms=pb.Histograms(
            tag_index=u4([1, 0]),
            step=i8([7, 8]),
            wall_time=f8([10.0, 11.0]),
            bucket_count=u4([3, 1]),
            edges=f8([0.0, 1.0, 2.0, 3.0, -10.0, 10.0]),
            counts=f8([1.0, 0.0, 2.5, 4.0]),
            min=f8([0.1, math.nan]),
            max=f8([2.9, math.inf]),
            sum=f8([5.0, 0.0]),
            sum_squares=f8([9.0, 0.0]),
        ),
        images=pb.Images(tag_index=u4([0, 1]), step=i8([1, 2]), wall_time=f8([5.0, 6.0]), data=[PNG, JPEG]),
    )


def same(a: np.ndarray, raw: bytes, dtype: str) -> bool:
    """Exactly the values sent, bit for bit (NaN payloads included), in the documented dtype."""
    return a.dtype == np.dtype(dtype) and a.tobytes() == raw


# -- the happy path ---------------------------------------------------------------------------------------


def test_valid_batch_decodes_to_exactly_its_columns() -> None:
    batch = valid_batch()
    decoded = decode_batch(batch)
    assert (decoded.run_id, decoded.rank, decoded.writer_id, decoded.seq) == ("run", 3, "writer", 9)
    assert decoded.tags == ["loss", "weights"]
    assert decoded.points == 3 + 2 + 2

    s = decoded.scalars
    assert s is not None
    assert same(s.tag_index, batch.scalars.tag_index, "<u4")
    assert same(s.step, batch.scalars.step, "<i8")
    assert same(s.wall_time, batch.scalars.wall_time, "<f8")
    assert same(s.value, batch.scalars.value, "<f8")

    h = decoded.histograms
    assert h is not None
    for name, dtype in (("tag_index", "<u4"), ("step", "<i8"), ("wall_time", "<f8"), ("edges", "<f8")):
        assert same(getattr(h, name), getattr(batch.histograms, name), dtype), name
    for name in ("counts", "min", "max", "sum", "sum_squares"):
        assert same(getattr(h, name), getattr(batch.histograms, name), "<f8"), name
    assert h.offsets_edges.tolist() == [0, 4, 6]
    assert h.offsets_counts.tolist() == [0, 3, 4]
    assert h.count.tolist() == [3.5, 4.0]

    im = decoded.images
    assert im is not None
    assert same(im.tag_index, batch.images.tag_index, "<u4")
    assert same(im.step, batch.images.step, "<i8")
    assert same(im.wall_time, batch.images.wall_time, "<f8")
    assert im.width.tolist() == [5, 4] and im.height.tolist() == [3, 7]
    assert im.mime == ["image/png", "image/jpeg"]
    assert im.data == [PNG, JPEG]


def test_batch_without_columns_decodes_with_none() -> None:
    decoded = decode_batch(pb.Batch(run_id="r", writer_id="w", seq=1))
    assert (decoded.scalars, decoded.histograms, decoded.images, decoded.tags) == (None, None, None, [])
    assert decoded.points == 0


def test_present_but_empty_groups_decode_to_empty_columns() -> None:
    batch = pb.Batch(run_id="r", writer_id="w", seq=1)
    batch.scalars.SetInParent()
    batch.histograms.SetInParent()
    batch.images.SetInParent()
    decoded = decode_batch(batch)
    assert decoded.scalars is not None and decoded.scalars.step.size == 0
    assert decoded.histograms is not None and decoded.histograms.count.size == 0
    assert decoded.histograms.offsets_edges.tolist() == [0]
    assert decoded.images is not None and decoded.images.data == [] and decoded.images.width.size == 0
    assert decoded.points == 0


def test_histogram_offsets_and_totals() -> None:
    buckets = [1, 3, 2]
    edges = [5.0, 6.0, -3.0, -2.0, -1.0, 0.0, 100.0, 200.0, 300.0]  # 2 + 4 + 3
    counts = [2.0, 1.0, 2.0, 3.0, 0.0, 0.5]  # 1 + 3 + 2
    batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["h"])
    batch.histograms.CopyFrom(
        pb.Histograms(
            tag_index=u4([0, 0, 0]),
            step=i8([1, 2, 3]),
            wall_time=f8([0, 0, 0]),
            bucket_count=u4(buckets),
            edges=f8(edges),
            counts=f8(counts),
            min=f8([0, 0, 0]),
            max=f8([0, 0, 0]),
            sum=f8([0, 0, 0]),
            sum_squares=f8([0, 0, 0]),
        )
    )
    h = decode_batch(batch).histograms
    assert h is not None
    assert h.offsets_edges.tolist() == [0, 2, 6, 9]
    assert h.offsets_counts.tolist() == [0, 1, 4, 6]
    assert h.count.tolist() == [2.0, 6.0, 0.5]
    for i, b in enumerate(buckets):
        lo, hi = h.offsets_edges[i], h.offsets_edges[i + 1]
        assert hi - lo == b + 1
        assert h.counts[h.offsets_counts[i] : h.offsets_counts[i + 1]].size == b


# -- the rules ---------------------------------------------------------------------------------------------

Mutation = Callable[[pb.Batch], None]


def setting(path: str, value: Any) -> Mutation:
    """Set `group.name` (or a top-level field) of the batch."""

    def mutate(batch: pb.Batch) -> None:
        *groups, name = path.split(".")
        target: Any = batch
        for group in groups:
            target = getattr(target, group)
        setattr(target, name, value)

    return mutate


def appending(path: str, extra: bytes) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        group, name = path.split(".")
        message = getattr(batch, group)
        setattr(message, name, getattr(message, name) + extra)

    return mutate


def tag(index: int, value: str) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        batch.tags[index] = value

    return mutate


def image(index: int, blob: bytes) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        batch.images.data[index] = blob

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(batch: pb.Batch) -> None:
        for m in mutations:
            m(batch)

    return mutate


def one_more_image(batch: pb.Batch) -> None:
    batch.images.data.append(PNG)


REJECTED: list[tuple[str, Mutation, str]] = [
    # column lengths disagree
    ("scalars-value-longer", setting("scalars.value", f8([1, 2, 3, 4])), "scalars"),
    ("scalars-tag-index-shorter", setting("scalars.tag_index", u4([0])), "scalars"),
    ("scalars-wall-time-empty", setting("scalars.wall_time", b""), "scalars"),
    ("scalars-step-shorter", setting("scalars.step", i8([0, 5])), "scalars"),
    ("histograms-step-longer", setting("histograms.step", i8([1, 2, 3])), "histograms"),
    ("histograms-max-shorter", setting("histograms.max", f8([1])), "histograms"),
    ("histograms-sum-squares-shorter", setting("histograms.sum_squares", f8([1])), "histograms"),
    ("histograms-bucket-count-longer", setting("histograms.bucket_count", u4([3, 1, 1])), "histograms"),
    ("images-wall-time-shorter", setting("images.wall_time", f8([5])), "images"),
    ("images-step-shorter", setting("images.step", i8([1])), "images"),
    ("images-more-data", one_more_image, "images"),
    # byte length not a multiple of the element size
    ("scalars-tag-index-ragged", appending("scalars.tag_index", b"\x00"), "scalars.tag_index"),
    ("scalars-step-ragged", appending("scalars.step", b"\x00" * 7), "scalars.step"),
    ("scalars-wall-time-ragged", appending("scalars.wall_time", b"\x00" * 4), "scalars.wall_time"),
    ("scalars-value-ragged", appending("scalars.value", b"\x00"), "scalars.value"),
    ("histograms-bucket-count-ragged", appending("histograms.bucket_count", b"\x00" * 3), "histograms.bucket_count"),
    ("histograms-edges-ragged", appending("histograms.edges", b"\x00"), "histograms.edges"),
    ("histograms-counts-ragged", appending("histograms.counts", b"\x00" * 2), "histograms.counts"),
    ("histograms-sum-squares-ragged", appending("histograms.sum_squares", b"\x00"), "histograms.sum_squares"),
    ("histograms-min-ragged", appending("histograms.min", b"\x00" * 5), "histograms.min"),
    ("images-step-ragged", appending("images.step", b"\x00"), "images.step"),
    ("images-tag-index-ragged", appending("images.tag_index", b"\x00"), "images.tag_index"),
    # tags
    ("tag-empty", tag(0, ""), "tags[0]"),
    ("tag-257-bytes", tag(1, "t" * 257), "tags[1]"),
    ("tag-258-bytes-129-chars", tag(0, "é" * 129), "tags[0]"),
    ("tag-260-bytes-65-chars", tag(1, "😀" * 65), "tags[1]"),
    # tag_index out of range
    ("scalars-tag-index-equals-tag-count", setting("scalars.tag_index", u4([0, 2, 0])), "scalars.tag_index"),
    ("scalars-tag-index-uint32-max", setting("scalars.tag_index", u4([0, UINT32_MAX, 0])), "scalars.tag_index"),
    ("histograms-tag-index-out-of-range", setting("histograms.tag_index", u4([2, 0])), "histograms.tag_index"),
    ("images-tag-index-out-of-range", setting("images.tag_index", u4([0, 9])), "images.tag_index"),
    # step < 0
    ("scalars-step-minus-one", setting("scalars.step", i8([0, -1, 5])), "scalars.step"),
    ("scalars-step-int64-min", setting("scalars.step", i8([-(2**63), 1, 5])), "scalars.step"),
    ("scalars-step-all-bits-set", setting("scalars.step", b"\x00" * 16 + b"\xff" * 8), "scalars.step"),  # -1
    ("histograms-step-negative", setting("histograms.step", i8([-3, 8])), "histograms.step"),
    ("images-step-negative", setting("images.step", i8([1, -2])), "images.step"),
    # histogram edges ascend (strictly), within each histogram
    ("edges-descending", setting("histograms.edges", f8([0, 2, 1, 3, -10, 10])), "histograms.edges"),
    ("edges-repeated", setting("histograms.edges", f8([0, 1, 1, 3, -10, 10])), "histograms.edges"),
    ("edges-second-histogram-descending", setting("histograms.edges", f8([0, 1, 2, 3, 10, -10])), "histograms.edges"),
    ("edges-nan", setting("histograms.edges", f8([0, 1, math.nan, 3, -10, 10])), "histograms.edges"),
    # counts >= 0
    ("counts-negative", setting("histograms.counts", f8([1, -0.5, 2, 4])), "histograms.counts"),
    ("counts-negative-infinity", setting("histograms.counts", f8([1, 0, 2, -math.inf])), "histograms.counts"),
    ("counts-nan", setting("histograms.counts", f8([1, math.nan, 2, 4])), "histograms.counts"),
    # counts = edges - 1 per histogram
    ("counts-one-short", setting("histograms.counts", f8([1, 0, 2])), "histograms.counts"),
    ("counts-one-extra", setting("histograms.counts", f8([1, 0, 2, 4, 5])), "histograms.counts"),
    ("edges-one-short", setting("histograms.edges", f8([0, 1, 2, 3, -10])), "histograms.edges"),
    ("edges-one-extra", setting("histograms.edges", f8([0, 1, 2, 3, -10, 10, 20])), "histograms.edges"),
    ("edges-as-many-as-counts", setting("histograms.edges", f8([0, 1, 2, 3])), "histograms.edges"),
    # bucket_count >= 1
    (
        "bucket-count-zero",
        both(
            setting("histograms.bucket_count", u4([0, 1])),
            setting("histograms.counts", f8([4])),
            setting("histograms.edges", f8([0, -10, 10])),
        ),
        "histograms.bucket_count",
    ),
    ("bucket-count-uint32-max", setting("histograms.bucket_count", u4([UINT32_MAX, 1])), "histograms.bucket_count"),
    # images: PNG or JPEG that decode
    ("image-empty", image(0, b""), "images.data[0]"),
    ("image-gif", image(1, encode_image("GIF")), "images.data[1]"),
    ("image-bmp", image(0, encode_image("BMP")), "images.data[0]"),
    ("image-text", image(0, b"hello, world"), "images.data[0]"),
    ("image-png-signature-only", image(0, PNG_MAGIC), "images.data[0]"),
    ("image-png-truncated", image(0, PNG[: len(PNG) // 2]), "images.data[0]"),
    ("image-png-header-only", image(0, png_header(5, 3)), "images.data[0]"),
    ("image-png-bad-ihdr-crc", image(0, PNG[:29] + bytes([PNG[29] ^ 0xFF]) + PNG[30:]), "images.data[0]"),
    (
        "image-png-pixel-data-not-zlib",
        image(0, png_header(5, 3) + png_chunk(b"IDAT", b"garbage" * 9) + png_chunk(b"IEND", b"")),
        "images.data[0]",
    ),
    ("image-jpeg-magic-only", image(1, JPEG_MAGIC), "images.data[1]"),
    ("image-jpeg-truncated", image(1, JPEG[: len(JPEG) // 2]), "images.data[1]"),
    ("image-jpeg-cut-in-pixel-data", image(1, JPEG[:-6]), "images.data[1]"),
    ("image-png-magic-but-jpeg-body", image(0, PNG_MAGIC + JPEG), "images.data[0]"),
    ("image-too-many-pixels", image(0, png_header(9000, 9000) + png_chunk(b"IEND", b"")), "images.data[0]"),
    ("image-too-many-bytes", image(1, PNG + bytes(DEFAULT_LIMITS.max_image_bytes)), "images.data[1]"),
    # identity
    ("run-id-empty", setting("run_id", ""), "run_id"),
    ("run-id-129-chars", setting("run_id", "r" * 129), "run_id"),
    ("writer-id-empty", setting("writer_id", ""), "writer_id"),
    ("writer-id-129-chars", setting("writer_id", "w" * 129), "writer_id"),
    ("seq-zero", setting("seq", 0), "seq"),
]


@pytest.mark.parametrize(("mutate", "field"), [pytest.param(m, f, id=i) for i, m, f in REJECTED])
def test_rule_is_enforced_and_names_the_field(mutate: Mutation, field: str) -> None:
    batch = valid_batch()
    mutate(batch)
    with pytest.raises(InvalidBatch) as caught:
        decode_batch(batch)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert isinstance(caught.value, ValueError)


ACCEPTED: list[tuple[str, Mutation]] = [
    ("tag-256-bytes-ascii", tag(0, "t" * 256)),
    ("tag-256-bytes-in-128-chars", tag(1, "é" * 128)),
    ("tag-256-bytes-in-64-emoji", tag(0, "😀" * 64)),
    ("tag-unicode-and-spaces", tag(0, "train / loss (ü) 学习")),
    ("tags-unused-extra", lambda b: b.tags.extend(["unused", "also unused"])),
    ("tags-duplicated", tag(1, "loss")),
    ("run-id-128-chars", setting("run_id", "r" * 128)),
    ("writer-id-128-chars", setting("writer_id", "é" * 128)),
    ("seq-uint64-max", setting("seq", UINT64_MAX)),
    ("rank-uint32-max", setting("rank", UINT32_MAX)),
    ("steps-zero-and-int64-max", setting("scalars.step", i8([0, INT64_MAX, 0]))),
    ("values-all-non-finite", setting("scalars.value", f8([math.nan, -math.nan, math.inf]))),
    ("values-nan-payloads", setting("scalars.value", u4([1, 0x7FF00000, 0xFFFFFFFF, 0xFFFFFFFF, 0, 0xFFF80000]))),
    ("wall-times-non-finite", setting("scalars.wall_time", f8([-math.inf, math.nan, math.inf]))),
    ("counts-all-zero", setting("histograms.counts", f8([0, 0, 0, 0]))),
    ("counts-huge", setting("histograms.counts", f8([1e300, 1e300, 1e300, 1]))),
    ("edges-negative-zero-to-tiny", setting("histograms.edges", f8([-1e-300, -0.0, 5e-324, 1e308, -10, 10]))),
    ("edges-next-histogram-starts-lower", setting("histograms.edges", f8([0, 1, 2, 3, -1e9, -1e8]))),
    ("edges-next-histogram-starts-equal", setting("histograms.edges", f8([0, 1, 2, 3, 3, 4]))),
    ("histogram-stats-non-finite", setting("histograms.sum", f8([math.nan, -math.inf]))),
    ("image-png-grayscale", image(0, encode_image("PNG", 1, 1, "L"))),
    ("image-jpeg-grayscale", image(1, encode_image("JPEG", 9, 2, "L"))),
    ("image-png-without-iend", image(0, PNG[:-12])),
    ("images-both-png", image(1, PNG)),
]


@pytest.mark.parametrize("mutate", [pytest.param(m, id=i) for i, m in ACCEPTED])
def test_valid_edge_cases_are_accepted_unchanged(mutate: Mutation) -> None:
    batch = valid_batch()
    mutate(batch)
    decoded = decode_batch(batch)
    assert decoded.tags == list(batch.tags)
    assert (decoded.run_id, decoded.writer_id, decoded.seq, decoded.rank) == (
        batch.run_id,
        batch.writer_id,
        batch.seq,
        batch.rank,
    )
    assert decoded.scalars is not None and decoded.histograms is not None and decoded.images is not None
    assert decoded.scalars.value.tobytes() == batch.scalars.value
    assert decoded.scalars.wall_time.tobytes() == batch.scalars.wall_time
    assert decoded.scalars.step.tobytes() == batch.scalars.step
    assert decoded.histograms.edges.tobytes() == batch.histograms.edges
    assert decoded.histograms.counts.tobytes() == batch.histograms.counts
    assert decoded.images.data == list(batch.images.data)


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_bad_edges_name_the_histogram(bad: int) -> None:
    edges = [[0.0, 1.0], [5.0, 6.0, 7.0], [-2.0, -1.0, 0.0, 1.0]]
    edges[bad][-1] = edges[bad][-2]  # not strictly ascending, at the very end of histogram `bad`
    batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["h"])
    batch.histograms.CopyFrom(
        pb.Histograms(
            tag_index=u4([0, 0, 0]),
            step=i8([1, 2, 3]),
            wall_time=f8([0, 0, 0]),
            bucket_count=u4([1, 2, 3]),
            edges=f8([e for h in edges for e in h]),
            counts=f8([1] * 6),
            min=f8([0, 0, 0]),
            max=f8([0, 0, 0]),
            sum=f8([0, 0, 0]),
            sum_squares=f8([0, 0, 0]),
        )
    )
    with pytest.raises(InvalidBatch, match=f"histogram {bad} ") as caught:
        decode_batch(batch)
    assert caught.value.field == "histograms.edges"


# -- limits ------------------------------------------------------------------------------------------------

LIMITED: list[tuple[str, Limits, Mutation, str]] = [
    ("tags-per-batch", replace(DEFAULT_LIMITS, max_tags_per_batch=2), lambda b: b.tags.append("x"), "tags"),
    ("tag-bytes", replace(DEFAULT_LIMITS, max_tag_bytes=4), tag(0, "abcde"), "tags[0]"),
    ("tag-bytes-utf8", replace(DEFAULT_LIMITS, max_tag_bytes=4), tag(1, "ééé"), "tags[1]"),
    ("id-chars-run-id", replace(DEFAULT_LIMITS, max_id_chars=3), setting("run_id", "abcd"), "run_id"),
    ("id-chars-writer-id", replace(DEFAULT_LIMITS, max_id_chars=8), setting("writer_id", "wwwwwwwww"), "writer_id"),
    ("buckets", replace(DEFAULT_LIMITS, max_buckets=2), lambda b: None, "histograms.bucket_count"),
    ("image-bytes", replace(DEFAULT_LIMITS, max_image_bytes=len(JPEG) - 1), lambda b: None, "images.data[1]"),
    ("image-pixels", replace(DEFAULT_LIMITS, max_image_pixels=14), lambda b: None, "images.data[0]"),
    ("images-per-batch", replace(DEFAULT_LIMITS, max_images_per_batch=1), lambda b: None, "images.data"),
]


@pytest.mark.parametrize(("limits", "mutate", "field"), [pytest.param(lim, m, f, id=i) for i, lim, m, f in LIMITED])
def test_limits_are_enforced(limits: Limits, mutate: Mutation, field: str) -> None:
    batch = valid_batch()
    mutate(batch)
    decode_batch(batch)  # within the default limits
    with pytest.raises(InvalidBatch) as caught:
        decode_batch(batch, limits)
    assert caught.value.field == field


def test_limits_are_inclusive() -> None:
    batch = valid_batch()
    assert max(len(PNG), len(JPEG)) < 10_000
    limits = Limits(
        max_tags_per_batch=2,
        max_tag_bytes=len("weights"),
        max_id_chars=len("writer"),
        max_buckets=3,
        max_image_bytes=max(len(PNG), len(JPEG)),
        max_image_pixels=28,
        max_images_per_batch=2,
    )
    assert decode_batch(batch, limits).points == 7


def test_histogram_with_the_maximum_number_of_buckets() -> None:
    b = DEFAULT_LIMITS.max_buckets
    batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=["h"])
    batch.histograms.CopyFrom(
        pb.Histograms(
            tag_index=u4([0]),
            step=i8([0]),
            wall_time=f8([0]),
            bucket_count=u4([b]),
            edges=np.arange(b + 1, dtype="<f8").tobytes(),
            counts=np.ones(b, dtype="<f8").tobytes(),
            min=f8([0]),
            max=f8([0]),
            sum=f8([0]),
            sum_squares=f8([0]),
        )
    )
    h = decode_batch(batch).histograms
    assert h is not None and h.count.tolist() == [float(b)]
    batch.histograms.bucket_count = u4([b + 1])
    batch.histograms.edges += f8([b + 1])
    batch.histograms.counts += f8([1])
    with pytest.raises(InvalidBatch) as caught:
        decode_batch(batch)
    assert caught.value.field == "histograms.bucket_count"


# -- property: well-formed batches decode to exactly their columns ------------------------------------------

text_char = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
tags_strategy = st.lists(st.text(text_char, min_size=1, max_size=64), min_size=1, max_size=6)  # <= 256 bytes
ids = st.text(text_char, min_size=1, max_size=128)
steps = st.integers(0, INT64_MAX)
any_float = st.floats(width=64)  # NaN and +-Inf included


@st.composite
def small_images(draw: st.DrawFn) -> tuple[bytes, int, int, str]:
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    mode = draw(st.sampled_from(["RGB", "L"]))
    fmt = draw(st.sampled_from(["PNG", "JPEG"]))
    pixels = draw(st.binary(min_size=width * height * len(mode), max_size=width * height * len(mode)))
    out = io.BytesIO()
    Image.frombytes(mode, (width, height), pixels).save(out, format=fmt)
    return out.getvalue(), width, height, "image/png" if fmt == "PNG" else "image/jpeg"


@st.composite
def histogram(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    buckets = draw(st.integers(1, 6))
    finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
    edges = sorted(draw(st.lists(finite, min_size=buckets + 1, max_size=buckets + 1, unique=True)))
    counts = draw(st.lists(st.floats(0, 1e12), min_size=buckets, max_size=buckets))
    return edges, counts


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[pb.Batch, list[tuple[int, int, str]]]:
    tags = draw(tags_strategy)
    tag_index = st.integers(0, len(tags) - 1)
    batch = pb.Batch(
        run_id=draw(ids),
        rank=draw(st.integers(0, UINT32_MAX)),
        writer_id=draw(ids),
        seq=draw(st.integers(1, UINT64_MAX)),
        tags=tags,
    )
    if draw(st.booleans()):
        n = draw(st.integers(0, 50))
        batch.scalars.tag_index = draw(arrays("<u4", n, elements=tag_index)).tobytes()
        batch.scalars.step = draw(arrays("<i8", n, elements=steps)).tobytes()
        batch.scalars.wall_time = draw(arrays("<f8", n, elements=any_float)).tobytes()
        batch.scalars.value = draw(st.binary(min_size=8 * n, max_size=8 * n))  # any bit pattern is a float64
    if draw(st.booleans()):
        hs = draw(st.lists(histogram(), max_size=5))
        n = len(hs)
        h = batch.histograms
        h.SetInParent()
        h.tag_index = draw(arrays("<u4", n, elements=tag_index)).tobytes()
        h.step = draw(arrays("<i8", n, elements=steps)).tobytes()
        h.wall_time = draw(arrays("<f8", n, elements=any_float)).tobytes()
        h.bucket_count = u4([len(counts) for _, counts in hs])
        h.edges = f8([e for edges, _ in hs for e in edges])
        h.counts = f8([c for _, counts in hs for c in counts])
        for name in ("min", "max", "sum", "sum_squares"):
            setattr(h, name, draw(st.binary(min_size=8 * n, max_size=8 * n)))
    expected_images: list[tuple[int, int, str]] = []
    if draw(st.booleans()):
        images = draw(st.lists(small_images(), max_size=3))
        n = len(images)
        batch.images.SetInParent()
        batch.images.tag_index = draw(arrays("<u4", n, elements=tag_index)).tobytes()
        batch.images.step = draw(arrays("<i8", n, elements=steps)).tobytes()
        batch.images.wall_time = draw(arrays("<f8", n, elements=any_float)).tobytes()
        batch.images.data.extend(blob for blob, *_ in images)
        expected_images = [(w, h, mime) for _, w, h, mime in images]
    return batch, expected_images


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed())
def test_well_formed_batches_decode_to_exactly_their_columns(case: tuple[pb.Batch, list[tuple[int, int, str]]]) -> None:
    batch, expected_images = case
    decoded = decode_batch(batch)
    assert isinstance(decoded, DecodedBatch)
    assert (decoded.run_id, decoded.rank, decoded.writer_id, decoded.seq) == (
        batch.run_id,
        batch.rank,
        batch.writer_id,
        batch.seq,
    )
    assert decoded.tags == list(batch.tags)
    points = 0

    if batch.HasField("scalars"):
        s = decoded.scalars
        assert s is not None
        for name, dtype in (("tag_index", "<u4"), ("step", "<i8"), ("wall_time", "<f8"), ("value", "<f8")):
            assert same(getattr(s, name), getattr(batch.scalars, name), dtype), name
        points += s.step.size
    else:
        assert decoded.scalars is None

    if batch.HasField("histograms"):
        h = decoded.histograms
        assert h is not None
        m = batch.histograms
        for name, dtype in (("tag_index", "<u4"), ("step", "<i8"), ("wall_time", "<f8")):
            assert same(getattr(h, name), getattr(m, name), dtype), name
        for name in ("edges", "counts", "min", "max", "sum", "sum_squares"):
            assert same(getattr(h, name), getattr(m, name), "<f8"), name
        buckets = np.frombuffer(m.bucket_count, "<u4").astype(np.int64)
        assert h.offsets_counts.tolist() == [0, *np.cumsum(buckets).tolist()]
        assert h.offsets_edges.tolist() == [0, *np.cumsum(buckets + 1).tolist()]
        expected_count = [
            math.fsum(h.counts[h.offsets_counts[i] : h.offsets_counts[i + 1]].tolist()) for i in range(len(buckets))
        ]
        np.testing.assert_allclose(h.count, np.array(expected_count, dtype=np.float64), rtol=1e-12)
        points += h.step.size
    else:
        assert decoded.histograms is None

    if batch.HasField("images"):
        im = decoded.images
        assert im is not None
        for name, dtype in (("tag_index", "<u4"), ("step", "<i8"), ("wall_time", "<f8")):
            assert same(getattr(im, name), getattr(batch.images, name), dtype), name
        assert im.data == list(batch.images.data)
        assert list(zip(im.width.tolist(), im.height.tolist(), im.mime, strict=True)) == expected_images
        points += im.step.size
    else:
        assert decoded.images is None

    assert decoded.points == points


# -- property: garbage raises InvalidBatch and nothing else ----------------------------------------------------


def check_only_invalid_batch(batch: pb.Batch) -> None:
    try:
        decode_batch(batch)
    except InvalidBatch as exc:
        assert exc.field, "InvalidBatch without a field"
        assert str(exc).startswith(f"{exc.field}: ")


blobs = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: PNG_MAGIC + b),
    st.binary(max_size=64).map(lambda b: JPEG_MAGIC + b),
    st.integers(0, len(PNG)).map(lambda k: PNG[:k]),
    st.integers(0, len(JPEG)).map(lambda k: JPEG[:k]),
    st.tuples(st.integers(0, len(PNG) - 1), st.integers(1, 255)).map(
        lambda p: PNG[: p[0]] + bytes([PNG[p[0]] ^ p[1]]) + PNG[p[0] + 1 :]
    ),
    st.tuples(st.integers(0, len(JPEG) - 1), st.integers(1, 255)).map(
        lambda p: JPEG[: p[0]] + bytes([JPEG[p[0]] ^ p[1]]) + JPEG[p[0] + 1 :]
    ),
)
SCALAR_FIELDS = ("tag_index", "step", "wall_time", "value")
HISTOGRAM_FIELDS = (
    *("tag_index", "step", "wall_time", "bucket_count", "edges", "counts"),
    *("min", "max", "sum", "sum_squares"),
)
IMAGE_FIELDS = ("tag_index", "step", "wall_time")


@st.composite
def garbage(draw: st.DrawFn) -> pb.Batch:
    """Random contents in every field: nothing is promised to be well formed."""
    text = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
    batch = pb.Batch(
        run_id=draw(text),
        rank=draw(st.integers(0, UINT32_MAX)),
        writer_id=draw(text),
        seq=draw(st.integers(0, UINT64_MAX)),
        tags=draw(st.lists(text, max_size=4)),
    )
    for group, names in (("scalars", SCALAR_FIELDS), ("histograms", HISTOGRAM_FIELDS), ("images", IMAGE_FIELDS)):
        if draw(st.booleans()):
            message = getattr(batch, group)
            message.SetInParent()
            for name in names:
                setattr(message, name, draw(st.binary(max_size=96)))
    if batch.HasField("images"):
        batch.images.data.extend(draw(st.lists(blobs, max_size=3)))
    return batch


@st.composite
def right_shaped_garbage(draw: st.DrawFn) -> pb.Batch:
    """Valid identity and column shapes (mostly), random contents: reaches the deeper checks."""
    tags = draw(st.lists(st.text(text_char, min_size=1, max_size=8), max_size=4))
    batch = pb.Batch(run_id="r", writer_id="w", seq=1, tags=tags)

    def column(n: int, width: int) -> bytes:
        raw = draw(st.binary(min_size=n * width, max_size=n * width))
        return raw + draw(st.sampled_from([b"", b"", b"", b"\x00"]))  # now and then ragged

    def small_u4(n: int, top: int) -> bytes:
        return u4(draw(st.lists(st.integers(0, top), min_size=n, max_size=n)))

    def maybe_small_u4(n: int, top: int) -> bytes:
        return small_u4(n, top) if draw(st.booleans()) else column(n, 4)

    def floats(n: int) -> bytes:
        if draw(st.booleans()):
            return column(n, 8)
        return f8(draw(st.lists(st.floats(width=64), min_size=n, max_size=n)))

    if draw(st.booleans()):
        n = draw(st.integers(0, 8))
        batch.scalars.CopyFrom(
            pb.Scalars(tag_index=maybe_small_u4(n, len(tags)), step=column(n, 8), wall_time=floats(n), value=floats(n))
        )
    if draw(st.booleans()):
        n = draw(st.integers(0, 5))
        buckets = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
        total = sum(buckets) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        edge_count, count_count = max(total + n, 0), max(total, 0)
        edges = draw(st.lists(st.floats(-10, 10) | st.floats(width=64), min_size=edge_count, max_size=edge_count))
        if draw(st.booleans()):
            edges.sort()
        counts = draw(st.lists(st.floats(-1, 100) | st.floats(width=64), min_size=count_count, max_size=count_count))
        batch.histograms.CopyFrom(
            pb.Histograms(
                tag_index=maybe_small_u4(n, len(tags)),
                step=column(n, 8),
                wall_time=floats(n),
                bucket_count=u4(buckets) if draw(st.booleans()) else column(n, 4),
                edges=f8(edges),
                counts=f8(counts),
                min=floats(n),
                max=floats(n),
                sum=floats(n),
                sum_squares=floats(n),
            )
        )
    if draw(st.booleans()):
        images = draw(st.lists(blobs, max_size=3))
        n = len(images) + draw(st.sampled_from([0, 0, 1]))
        batch.images.CopyFrom(
            pb.Images(tag_index=maybe_small_u4(n, len(tags)), step=column(n, 8), wall_time=floats(n), data=images)
        )
    return batch


@settings(max_examples=400, deadline=None)
@given(garbage())
def test_garbage_fields_raise_only_invalid_batch(batch: pb.Batch) -> None:
    check_only_invalid_batch(batch)


@settings(max_examples=400, deadline=None)
@given(right_shaped_garbage())
def test_right_shaped_garbage_raises_only_invalid_batch(batch: pb.Batch) -> None:
    check_only_invalid_batch(batch)


VALID_WIRE = valid_batch().SerializeToString()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID_WIRE) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_wire_bytes_that_still_parse_raise_only_invalid_batch(edits: list[tuple[int, int]]) -> None:
    wire = bytearray(VALID_WIRE)
    for position, value in edits:
        wire[position] = value
    try:
        batch = pb.Batch.FromString(bytes(wire))
    except DecodeError:
        return  # the transport's problem, not decode_batch's
    check_only_invalid_batch(batch)
