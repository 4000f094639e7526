"""Decoding and validating one wire batch. Pure: a protobuf message in, NumPy columns or InvalidBatch out.

Every rule is checked before anything is written, so a rejected batch leaves no
trace. Checks are vectorised: no Python work per point.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image

from runstream.v1 import ingest_pb2 as pb
from runstream_service.errors import BadRequest
from runstream_service.limits import DEFAULT_LIMITS, Limits
from runstream_service.store.kinds import (
    AUDIO,
    EMBEDDING,
    GRAPH,
    HISTOGRAM,
    IMAGE,
    KINDS,
    MESH,
    PENDING_EXTRAS,
    PENDING_FIELDS,
    PR_CURVE,
    SCALAR,
    TENSOR,
    TEXT,
    VIDEO,
)
from runstream_service.store.media import MediaError, VideoInfo, parse_video, parse_wav

T = TypeVar("T")

if TYPE_CHECKING:  # store.base imports this module
    from runstream_service.store.base import Transaction

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class InvalidBatch(BadRequest, ValueError):
    """A batch broke a rule; `field` names the offending field, as in `scalars.step` (INVALID_ARGUMENT)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class ScalarRows:
    """The by-row form as sent: row i is the next points[i] points, all at step[i] and wall_time[i]."""

    points: np.ndarray  # uint32, >= 1
    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64


@dataclass(frozen=True)
class ScalarColumns:
    tag_index: np.ndarray  # uint32
    step: np.ndarray  # int64, one per point
    wall_time: np.ndarray  # float64, one per point
    value: np.ndarray  # float64
    rows: ScalarRows | None = None  # kept when the batch came by row: summaries can work on rows


@dataclass(frozen=True)
class HistogramColumns:
    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    offsets_edges: np.ndarray  # int64, n + 1: edges of histogram i are edges[offsets_edges[i]:offsets_edges[i+1]]
    offsets_counts: np.ndarray  # int64, n + 1
    edges: np.ndarray
    counts: np.ndarray
    count: np.ndarray  # sum of counts per histogram
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    sum_squares: np.ndarray


@dataclass(frozen=True)
class ImageColumns:
    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    width: np.ndarray  # int32
    height: np.ndarray
    mime: list[str]
    data: list[bytes]
    boxes: list[str | None] | None = None  # one per image (JSON, or None for no boxes); None: no image has any


@dataclass(frozen=True)
class TextColumns:
    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    text: list[str]


@dataclass(frozen=True)
class EmbeddingColumns:
    """The points of the embedding chunks of a batch, one row per point (every per-chunk field repeated)."""

    tag_index: np.ndarray  # uint32
    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64
    idx: np.ndarray  # int32: the point's row in its embedding
    total_rows: np.ndarray  # int32: the points of its whole embedding
    offsets: np.ndarray  # int64, points + 1: point i's vector is vectors[offsets[i]:offsets[i + 1]]
    vectors: np.ndarray  # float32, row after row
    metadata: list[str | None]  # a JSON object per point, or None
    image: list[bytes | None]  # PNG bytes per point, or None


@dataclass(frozen=True)
class GraphColumns:
    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    nodes: np.ndarray  # int64 counts, one per graph
    edges: np.ndarray  # int64
    parameters: np.ndarray  # int64: the model's total
    doc: list[str]  # the document as sent (checked to be JSON of the documented shape)


@dataclass(frozen=True)
class AudioColumns:
    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    sample_rate: np.ndarray  # float64, from each WAV's header
    channels: np.ndarray  # int32
    frames: np.ndarray  # int64: samples per channel
    wav: list[bytes]  # the files as sent


@dataclass(frozen=True)
class VideoColumns:
    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    width: np.ndarray  # int32
    height: np.ndarray  # int32
    frames: np.ndarray  # int32
    fps: np.ndarray  # float64, > 0
    mime: list[str]  # image/apng or image/gif
    data: list[bytes]


@dataclass(frozen=True)
class PrCurveColumns:
    """Curve i's values of each of the six rows are row[offsets[i]:offsets[i + 1]] (its thresholds long)."""

    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    thresholds: np.ndarray  # int32, >= 2
    offsets: np.ndarray  # int64, curves + 1
    true_positives: np.ndarray  # float64
    false_positives: np.ndarray
    true_negatives: np.ndarray
    false_negatives: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


@dataclass(frozen=True)
class MeshColumns:
    """Mesh i's vertices are vertices[vertex_offsets[i]:vertex_offsets[i + 1]] (3 floats per vertex); its colours
    and faces likewise (a mesh without colours or faces has an empty range, stored as NULL)."""

    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    sample: np.ndarray  # int32
    vertex_count: np.ndarray  # int32
    face_count: np.ndarray  # int32
    color_count: np.ndarray  # int32: 0 or vertex_count
    vertex_offsets: np.ndarray  # int64, meshes + 1
    color_offsets: np.ndarray  # int64, meshes + 1
    face_offsets: np.ndarray  # int64, meshes + 1
    vertices: np.ndarray  # float32
    colors: np.ndarray  # uint8
    faces: np.ndarray  # int32: vertex indices within the mesh
    config: list[str]  # a JSON object per mesh ('{}' when none)


@dataclass(frozen=True)
class TensorColumns:
    tag_index: np.ndarray
    step: np.ndarray
    wall_time: np.ndarray
    dtype: list[str]
    shape_offsets: np.ndarray  # int64, tensors + 1: tensor i's shape is shape[shape_offsets[i]:shape_offsets[i + 1]]
    shape: np.ndarray  # int64
    data: list[bytes]  # raw little-endian values


@dataclass(frozen=True)
class TagInfoRow:
    tag: str
    display_name: str
    description: str


@dataclass(frozen=True)
class DecodedBatch:
    run_id: str
    rank: int
    writer_id: str
    seq: int
    tags: list[str]
    scalars: ScalarColumns | None
    histograms: HistogramColumns | None
    images: ImageColumns | None
    texts: TextColumns | None = None
    graphs: GraphColumns | None = None
    embeddings: EmbeddingColumns | None = None
    audio: AudioColumns | None = None
    videos: VideoColumns | None = None
    pr_curves: PrCurveColumns | None = None
    meshes: MeshColumns | None = None
    tensors: TensorColumns | None = None
    tag_info: tuple[TagInfoRow, ...] = ()  # what the writer says of its tags; the last for a tag wins
    custom_scalars_layout: str | None = None  # the run's layout (JSON, as sent), or None
    source_offset: int = 0  # where in an importer's source file this batch ends; 0: not an importer
    # Writes that commit with this batch's points, in order: its Visdom calls (visdom/batched.py), which
    # ingest.py parses and attaches; decode_batch leaves them empty.
    with_commit: tuple[Transaction, ...] = ()

    @property
    def points(self) -> int:
        columns = (getattr(self, kind.field) for kind in KINDS)
        return sum(len(c.step) for c in columns if c is not None)


def decode_batch(batch: pb.Batch, limits: Limits = DEFAULT_LIMITS) -> DecodedBatch:
    """Validate `batch` against the wire's rules (proto/runstream/v1/ingest.proto) and return its columns;
    raise InvalidBatch otherwise."""
    _check_id(batch.run_id, "run_id", limits)
    _check_id(batch.writer_id, "writer_id", limits)
    if batch.seq < 1:
        raise InvalidBatch("seq", "must be >= 1 (the first batch of a writer has seq 1)")
    tags = list(batch.tags)
    _check_tags(tags, limits)
    for field in PENDING_FIELDS:
        if batch.HasField(field):
            raise InvalidBatch(field, "this server does not store this kind yet; upgrade the server")
    for field in PENDING_EXTRAS:
        if getattr(batch, field):
            raise InvalidBatch(field, "this server does not store this yet; upgrade the server")
    columns: dict[str, Any] = {
        kind.field: DECODERS[kind.name](getattr(batch, kind.field), len(tags), limits)
        if batch.HasField(kind.field)
        else None
        for kind in KINDS
    }
    return DecodedBatch(
        batch.run_id,
        batch.rank,
        batch.writer_id,
        batch.seq,
        tags,
        **columns,
        tag_info=_decode_tag_info(list(batch.tag_info), limits),
        custom_scalars_layout=_check_layout(batch.custom_scalars_layout) if batch.custom_scalars_layout else None,
        source_offset=batch.source_offset,
    )


def _check_id(value: str, field: str, limits: Limits) -> None:
    if not value:
        raise InvalidBatch(field, "must not be empty")
    if len(value) > limits.max_id_chars:
        raise InvalidBatch(field, f"must be at most {limits.max_id_chars} characters")


def _check_tags(tags: list[str], limits: Limits) -> None:
    if len(tags) > limits.max_tags_per_batch:
        raise InvalidBatch("tags", f"{len(tags)} tags in one batch; the limit is {limits.max_tags_per_batch}")
    for i, tag in enumerate(tags):
        if not tag:
            raise InvalidBatch(f"tags[{i}]", "a tag must not be empty")
        if len(tag.encode("utf-8")) > limits.max_tag_bytes:
            raise InvalidBatch(f"tags[{i}]", f"longer than {limits.max_tag_bytes} bytes of UTF-8")
        if "\x00" in tag:
            raise InvalidBatch(f"tags[{i}]", "contains a NUL character")


def _column(raw: bytes, dtype: str, field: str) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    if len(raw) % width:
        raise InvalidBatch(field, f"{len(raw)} bytes is not a whole number of {width}-byte values")
    return np.frombuffer(raw, dtype=dtype)


def _same_length(field_lengths: dict[str, int], group: str) -> int:
    lengths = set(field_lengths.values())
    if len(lengths) > 1:
        described = ", ".join(f"{name}={n}" for name, n in field_lengths.items())
        raise InvalidBatch(group, f"columns differ in length ({described})")
    return lengths.pop()


def _check_common(group: str, tag_index: np.ndarray, step: np.ndarray, tag_count: int) -> None:
    if tag_index.size and int(tag_index.max()) >= tag_count:
        raise InvalidBatch(
            f"{group}.tag_index", f"refers to tag {int(tag_index.max())}, but the batch has {tag_count} tags"
        )
    if step.size and int(step.min()) < 0:
        raise InvalidBatch(f"{group}.step", f"steps must be >= 0, got {int(step.min())}")


def _decode_scalars(message: pb.Scalars, tag_count: int, limits: Limits) -> ScalarColumns:
    tag_index = _column(message.tag_index, "<u4", "scalars.tag_index")
    step = _column(message.step, "<i8", "scalars.step")
    wall_time = _column(message.wall_time, "<f8", "scalars.wall_time")
    value = _column(message.value, "<f8", "scalars.value")
    _same_length({"tag_index": len(tag_index), "value": len(value)}, "scalars")
    if message.row_points:  # by row: checked per row, then each row's step and wall time repeated per point
        row_points = _column(message.row_points, "<u4", "scalars.row_points")
        _same_length({"step": len(step), "wall_time": len(wall_time), "row_points": len(row_points)}, "scalars rows")
        if int(row_points.min()) < 1:
            raise InvalidBatch("scalars.row_points", "every row must hold at least one point, got 0")
        total = int(row_points.sum(dtype=np.int64))
        if total != len(value):
            raise InvalidBatch("scalars.row_points", f"the rows hold {total} points, but there are {len(value)} values")
        _check_common("scalars", tag_index, step, tag_count)
        rows = ScalarRows(row_points, step, wall_time)
        width = int(row_points[0])  # usually every row has the tags of one `log` call: a plain repeat, faster
        repeats: int | np.ndarray = width if int(row_points.max()) == width == int(row_points.min()) else row_points
        return ScalarColumns(tag_index, np.repeat(step, repeats), np.repeat(wall_time, repeats), value, rows)
    _same_length({"tag_index": len(tag_index), "step": len(step), "wall_time": len(wall_time)}, "scalars")
    _check_common("scalars", tag_index, step, tag_count)
    return ScalarColumns(tag_index=tag_index, step=step, wall_time=wall_time, value=value)


def _decode_histograms(message: pb.Histograms, tag_count: int, limits: Limits) -> HistogramColumns:
    per_histogram = {
        name: _column(getattr(message, name), dtype, f"histograms.{name}")
        for name, dtype in (
            ("tag_index", "<u4"),
            ("step", "<i8"),
            ("wall_time", "<f8"),
            ("bucket_count", "<u4"),
            ("min", "<f8"),
            ("max", "<f8"),
            ("sum", "<f8"),
            ("sum_squares", "<f8"),
        )
    }
    n = _same_length({k: len(v) for k, v in per_histogram.items()}, "histograms")
    _check_common("histograms", per_histogram["tag_index"], per_histogram["step"], tag_count)
    buckets = per_histogram["bucket_count"].astype(np.int64)
    if n and (buckets.min() < 1 or buckets.max() > limits.max_buckets):
        raise InvalidBatch("histograms.bucket_count", f"each histogram needs 1 to {limits.max_buckets} buckets")
    edges = _column(message.edges, "<f8", "histograms.edges")
    counts = _column(message.counts, "<f8", "histograms.counts")
    if counts.size != int(buckets.sum()):
        raise InvalidBatch(
            "histograms.counts", f"has {counts.size} values; bucket_count adds up to {int(buckets.sum())}"
        )
    if edges.size != int(buckets.sum()) + n:
        raise InvalidBatch(
            "histograms.edges",
            f"has {edges.size} values; each histogram needs one more edge than counts ({int(buckets.sum()) + n})",
        )
    if not np.isfinite(edges).all():
        raise InvalidBatch("histograms.edges", "edges must be finite")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise InvalidBatch("histograms.counts", "counts must be finite and >= 0")
    offsets_counts = np.concatenate(([0], np.cumsum(buckets)))
    offsets_edges = offsets_counts + np.arange(n + 1)
    rising = edges[1:] > edges[:-1]  # not np.diff, which overflows near the float64 limits
    # Differences across the boundary between two histograms do not count.
    boundaries = offsets_edges[1:-1] - 1
    rising[boundaries] = True
    if not rising.all():
        bad = int(np.searchsorted(offsets_edges, int(np.flatnonzero(~rising)[0]), side="right")) - 1
        raise InvalidBatch("histograms.edges", f"edges of histogram {bad} must be strictly ascending")
    count = np.add.reduceat(counts, offsets_counts[:-1]) if n else np.zeros(0)
    return HistogramColumns(
        tag_index=per_histogram["tag_index"],
        step=per_histogram["step"],
        wall_time=per_histogram["wall_time"],
        offsets_edges=offsets_edges,
        offsets_counts=offsets_counts,
        edges=edges,
        counts=counts,
        count=count,
        min=per_histogram["min"],
        max=per_histogram["max"],
        sum=per_histogram["sum"],
        sum_squares=per_histogram["sum_squares"],
    )


def _decode_images(message: pb.Images, tag_count: int, limits: Limits) -> ImageColumns:
    tag_index = _column(message.tag_index, "<u4", "images.tag_index")
    step = _column(message.step, "<i8", "images.step")
    wall_time = _column(message.wall_time, "<f8", "images.wall_time")
    data = list(message.data)
    _same_length(
        {"tag_index": len(tag_index), "step": len(step), "wall_time": len(wall_time), "data": len(data)}, "images"
    )
    _check_common("images", tag_index, step, tag_count)
    if len(data) > limits.max_images_per_batch:
        raise InvalidBatch(
            "images.data", f"{len(data)} images in one batch; the limit is {limits.max_images_per_batch}"
        )
    widths, heights, mimes = [], [], []
    for i, blob in enumerate(data):
        width, height, mime = _check_image(blob, f"images.data[{i}]", limits)
        widths.append(width)
        heights.append(height)
        mimes.append(mime)
    boxes = _image_boxes(list(message.boxes), len(data))
    return ImageColumns(
        tag_index, step, wall_time, np.array(widths, np.int32), np.array(heights, np.int32), mimes, data, boxes
    )


MAX_BOXES_PER_IMAGE = 10_000
MAX_LABEL_CHARS = 1_000
MAX_BOXES_JSON_CHARS = MAX_BOXES_PER_IMAGE * (6 * MAX_LABEL_CHARS + 200)  # \uXXXX is 6 characters
BOXES_SHAPE = '{"boxes": [[x_min, y_min, x_max, y_max], ...], "labels": [...]}'


def _image_boxes(boxes: list[str], images: int) -> list[str | None] | None:
    """Each image's boxes as canonical JSON (None: none), or None when the batch has no boxes at all."""
    if not boxes:
        return None
    if len(boxes) != images:
        raise InvalidBatch("images.boxes", f"has {len(boxes)} entries; give none, or one per image ({images})")
    return [_check_boxes(item, f"images.boxes[{i}]") if item else None for i, item in enumerate(boxes)]


def _check_boxes(item: str, field: str) -> str:
    if len(item) > MAX_BOXES_JSON_CHARS:  # before parsing: the most boxes with the longest labels, escaped
        raise InvalidBatch(field, f"{len(item)} characters; at most {MAX_BOXES_PER_IMAGE} boxes per image")
    try:
        parsed = json.loads(item, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidBatch(field, f"is not JSON: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("boxes"), list):
        raise InvalidBatch(field, f"must be a JSON object {BOXES_SHAPE}")
    if set(parsed) - {"boxes", "labels"}:
        unknown = sorted(set(parsed) - {"boxes", "labels"})
        raise InvalidBatch(field, f"has unknown keys {unknown}; only boxes and labels")
    box_list = parsed["boxes"]
    if len(box_list) > MAX_BOXES_PER_IMAGE:
        raise InvalidBatch(f"{field}.boxes", f"{len(box_list)} boxes; at most {MAX_BOXES_PER_IMAGE} per image")
    for j, box in enumerate(box_list):
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise InvalidBatch(f"{field}.boxes[{j}]", "must be [x_min, y_min, x_max, y_max], four finite numbers")
        if box[0] > box[2] or box[1] > box[3]:
            raise InvalidBatch(f"{field}.boxes[{j}]", f"{box}: x_min must be <= x_max and y_min <= y_max")
    out: dict[str, Any] = {"boxes": box_list}
    labels = parsed.get("labels")
    if labels is not None:
        if not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
            raise InvalidBatch(f"{field}.labels", "must be a list of strings, one per box")
        if len(labels) != len(box_list):
            raise InvalidBatch(f"{field}.labels", f"{len(labels)} labels for {len(box_list)} boxes; give one per box")
        if any(len(label) > MAX_LABEL_CHARS for label in labels):
            raise InvalidBatch(f"{field}.labels", f"a label may have at most {MAX_LABEL_CHARS} characters")
        out["labels"] = labels
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 1 << 63
    return isinstance(value, float) and math.isfinite(value)


def _decode_texts(message: pb.Texts, tag_count: int, limits: Limits) -> TextColumns:
    tag_index = _column(message.tag_index, "<u4", "texts.tag_index")
    step = _column(message.step, "<i8", "texts.step")
    wall_time = _column(message.wall_time, "<f8", "texts.wall_time")
    text = list(message.text)
    _same_length(
        {"tag_index": len(tag_index), "step": len(step), "wall_time": len(wall_time), "text": len(text)}, "texts"
    )
    _check_common("texts", tag_index, step, tag_count)
    if len(text) > limits.max_texts_per_batch:
        raise InvalidBatch("texts.text", f"{len(text)} texts in one batch; the limit is {limits.max_texts_per_batch}")
    for i, item in enumerate(text):
        # A str of n characters holds at least n bytes of UTF-8; encode only when it may be too long.
        if len(item) * 4 > limits.max_text_bytes and len(item.encode("utf-8")) > limits.max_text_bytes:
            raise InvalidBatch(f"texts.text[{i}]", f"longer than {limits.max_text_bytes} bytes of UTF-8")
        if "\x00" in item:
            raise InvalidBatch(f"texts.text[{i}]", "contains a NUL character")
    return TextColumns(tag_index, step, wall_time, text)


# An embedding's bounds (the SDK states the same ones at the call: sdk/runstream/_inputs.py).
EMBEDDING_MAX_ROWS = 10_000_000
EMBEDDING_MAX_DIMS = 16_384
EMBEDDING_MAX_VALUES = 1 << 31  # rows x dims: 8 GiB of float32
EMBEDDING_MAX_METADATA_BYTES = 1 << 20  # one point's JSON object (the SDK: 64 columns, strings of 1,000 characters)


def _decode_embeddings(message: pb.Embeddings, tag_count: int, limits: Limits) -> EmbeddingColumns:
    """Chunks of rows of embeddings: each chunk's shape is checked against its embedding's, its vectors'
    length against its shape, and each point's metadata (a JSON object) and image (a PNG that decodes)."""
    per_chunk = {
        name: _column(getattr(message, name), dtype, f"embeddings.{name}")
        for name, dtype in (
            ("tag_index", "<u4"),
            ("step", "<i8"),
            ("wall_time", "<f8"),
            ("first_row", "<u4"),
            ("rows", "<u4"),
            ("dims", "<u4"),
            ("total_rows", "<u4"),
        )
    }
    _same_length({k: len(v) for k, v in per_chunk.items()}, "embeddings")
    _check_common("embeddings", per_chunk["tag_index"], per_chunk["step"], tag_count)
    rows, dims, total = (per_chunk[k].astype(np.int64) for k in ("rows", "dims", "total_rows"))
    first = per_chunk["first_row"].astype(np.int64)
    if rows.size and rows.min() < 1:
        raise InvalidBatch("embeddings.rows", "every chunk must hold at least one row, got 0")
    if dims.size and not (dims.min() >= 1 and dims.max() <= EMBEDDING_MAX_DIMS):
        raise InvalidBatch("embeddings.dims", f"an embedding needs 1 to {EMBEDDING_MAX_DIMS} dimensions")
    if total.size and not (total.min() >= 1 and total.max() <= EMBEDDING_MAX_ROWS):
        raise InvalidBatch("embeddings.total_rows", f"an embedding needs 1 to {EMBEDDING_MAX_ROWS} rows")
    if (total * dims > EMBEDDING_MAX_VALUES).any():
        raise InvalidBatch("embeddings.dims", f"rows x dims may be at most {EMBEDDING_MAX_VALUES} values")
    if (first + rows > total).any():
        bad = int(np.flatnonzero(first + rows > total)[0])
        raise InvalidBatch(
            "embeddings.first_row",
            f"chunk {bad} holds rows {int(first[bad])}..{int(first[bad] + rows[bad]) - 1}, beyond the embedding's "
            f"{int(total[bad])} rows",
        )
    _check_same_shape(per_chunk["tag_index"], per_chunk["step"], dims, total)
    vectors = _column(message.vectors, "<f4", "embeddings.vectors")
    expected = int((rows * dims).sum())
    if vectors.size != expected:
        raise InvalidBatch("embeddings.vectors", f"has {vectors.size} values; rows x dims add up to {expected}")
    points = int(rows.sum())
    metadata = _embedding_metadata(list(message.metadata), points)
    image = _embedding_images(list(message.image), points, limits)
    idx = (np.arange(points, dtype=np.int64) - np.repeat(np.cumsum(rows) - rows - first, rows)).astype(np.int32)
    offsets = np.zeros(points + 1, dtype=np.int64)
    np.cumsum(np.repeat(dims, rows), out=offsets[1:])
    return EmbeddingColumns(
        tag_index=np.repeat(per_chunk["tag_index"], rows),
        step=np.repeat(per_chunk["step"], rows),
        wall_time=np.repeat(per_chunk["wall_time"], rows),
        idx=idx,
        total_rows=np.repeat(total, rows).astype(np.int32),
        offsets=offsets,
        vectors=vectors,
        metadata=metadata,
        image=image,
    )


def _check_same_shape(tag_index: np.ndarray, step: np.ndarray, dims: np.ndarray, total: np.ndarray) -> None:
    """The chunks of one embedding (tag and step) in a batch agree on its shape (a few chunks: per chunk)."""
    shapes: dict[tuple[int, int], tuple[int, int]] = {}
    for i, key in enumerate(zip(tag_index.tolist(), step.tolist())):
        shape = (int(total[i]), int(dims[i]))
        if shapes.setdefault(key, shape) != shape:
            raise InvalidBatch(
                "embeddings.dims",
                f"chunk {i} says its embedding is {shape[0]} x {shape[1]}, an earlier chunk of the same tag and "
                f"step {shapes[key][0]} x {shapes[key][1]}",
            )


def _refuse_constant(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _embedding_metadata(metadata: list[str], points: int) -> list[str | None]:
    if not metadata:
        return [None] * points
    if len(metadata) != points:
        raise InvalidBatch("embeddings.metadata", f"has {len(metadata)} entries; the chunks hold {points} rows")
    out: list[str | None] = []
    for i, item in enumerate(metadata):
        if not item:
            out.append(None)
            continue
        if len(item) * 4 > EMBEDDING_MAX_METADATA_BYTES and len(item.encode("utf-8")) > EMBEDDING_MAX_METADATA_BYTES:
            raise InvalidBatch(f"embeddings.metadata[{i}]", f"longer than {EMBEDDING_MAX_METADATA_BYTES} bytes")
        try:
            parsed = json.loads(item, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise InvalidBatch(f"embeddings.metadata[{i}]", f"is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise InvalidBatch(f"embeddings.metadata[{i}]", "must be a JSON object (column -> value)")
        out.append(item)
    return out


def _embedding_images(images: list[bytes], points: int, limits: Limits) -> list[bytes | None]:
    if not images:
        return [None] * points
    if len(images) != points:
        raise InvalidBatch("embeddings.image", f"has {len(images)} entries; the chunks hold {points} rows")
    out: list[bytes | None] = []
    for i, blob in enumerate(images):
        if not blob:
            out.append(None)
            continue
        if not blob.startswith(PNG_MAGIC):
            raise InvalidBatch(f"embeddings.image[{i}]", "is not a PNG (checked by its first bytes)")
        _check_image(blob, f"embeddings.image[{i}]", limits)
        out.append(blob)
    return out


# A graph travels in one message (64 MiB at most); a ResNet-50 is ~ 300 nodes and 200 KB.
MAX_GRAPH_DOC_BYTES = 48 << 20
MAX_GRAPH_NODES = 1_000_000


def _decode_graphs(message: pb.Graphs, tag_count: int, limits: Limits) -> GraphColumns:
    tag_index = _column(message.tag_index, "<u4", "graphs.tag_index")
    step = _column(message.step, "<i8", "graphs.step")
    wall_time = _column(message.wall_time, "<f8", "graphs.wall_time")
    docs = list(message.doc)
    _same_length(
        {"tag_index": len(tag_index), "step": len(step), "wall_time": len(wall_time), "doc": len(docs)}, "graphs"
    )
    _check_common("graphs", tag_index, step, tag_count)
    counts = np.array([_check_graph(doc, f"graphs.doc[{i}]") for i, doc in enumerate(docs)], np.int64)
    counts = counts.reshape(len(docs), 3)
    return GraphColumns(tag_index, step, wall_time, counts[:, 0], counts[:, 1], counts[:, 2], docs)


def _reject_constant(token: str) -> None:
    raise ValueError(f"{token} is not JSON")


def _check_graph(doc: str, field: str) -> tuple[int, int, int]:
    """A graph document's nodes, edges and parameters, or InvalidBatch naming what is wrong with it."""
    if len(doc) > MAX_GRAPH_DOC_BYTES:
        raise InvalidBatch(field, f"{len(doc)} characters; a graph document may have at most {MAX_GRAPH_DOC_BYTES}")
    try:
        parsed = json.loads(doc, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidBatch(field, f"is not JSON: {exc}") from None
    nodes = parsed.get("nodes") if isinstance(parsed, dict) else None
    edges = parsed.get("edges") if isinstance(parsed, dict) else None
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise InvalidBatch(field, 'must be a JSON object with the lists "nodes" and "edges"')
    if len(nodes) > MAX_GRAPH_NODES:
        raise InvalidBatch(field, f"{len(nodes)} nodes; a graph may have at most {MAX_GRAPH_NODES}")
    used = 0
    for i, node in enumerate(nodes):
        if not (isinstance(node, dict) and isinstance(node.get("name"), str) and isinstance(node.get("op"), str)):
            raise InvalidBatch(f"{field}.nodes[{i}]", 'must be an object with the strings "name" and "op"')
        if not isinstance(node.get("scope", ""), str):
            raise InvalidBatch(f"{field}.nodes[{i}].scope", "must be a string")
        shape = node.get("output_shape")
        if shape is not None and not (isinstance(shape, list) and all(type(s) is int for s in shape)):
            raise InvalidBatch(f"{field}.nodes[{i}].output_shape", "must be a list of integers or null")
        parameters = node.get("parameters", 0)
        if type(parameters) is not int or parameters < 0:
            raise InvalidBatch(f"{field}.nodes[{i}].parameters", "must be an integer >= 0")
        used += parameters
    count = len(nodes)
    for i, edge in enumerate(edges):
        if not (
            isinstance(edge, list) and len(edge) == 2 and all(type(end) is int and 0 <= end < count for end in edge)
        ):
            raise InvalidBatch(f"{field}.edges[{i}]", f"must be [from, to], two node indices below {count}")
    total = parsed.get("parameters", used)
    if type(total) is not int or total < 0:
        raise InvalidBatch(f"{field}.parameters", "must be an integer >= 0 (the model's parameters)")
    return count, len(edges), total


def _check_image(blob: bytes, field: str, limits: Limits) -> tuple[int, int, str]:
    if len(blob) > limits.max_image_bytes:
        raise InvalidBatch(field, f"{len(blob)} bytes; an encoded image may have at most {limits.max_image_bytes}")
    if blob.startswith(PNG_MAGIC):
        mime, fmt = "image/png", "PNG"
    elif blob.startswith(JPEG_MAGIC):
        mime, fmt = "image/jpeg", "JPEG"
    else:
        raise InvalidBatch(field, "is neither PNG nor JPEG (checked by its first bytes)")
    try:
        with Image.open(io.BytesIO(blob), formats=[fmt]) as image:
            width, height = image.size
            if width * height > limits.max_image_pixels:
                raise InvalidBatch(
                    field, f"{width}x{height} pixels is more than the limit of {limits.max_image_pixels}"
                )
            image.load()
    except InvalidBatch:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise InvalidBatch(field, f"does not decode as {fmt}: {exc}") from None
    return width, height, mime


def _point_keys(message: Any, group: str, tag_count: int, **per_point: int) -> tuple[np.ndarray, ...]:
    """tag_index, step and wall_time of a kind with one value of each per point, checked against each other,
    against the named per-point fields' lengths and against the batch's tags."""
    tag_index = _column(message.tag_index, "<u4", f"{group}.tag_index")
    step = _column(message.step, "<i8", f"{group}.step")
    wall_time = _column(message.wall_time, "<f8", f"{group}.wall_time")
    _same_length({"tag_index": len(tag_index), "step": len(step), "wall_time": len(wall_time), **per_point}, group)
    _check_common(group, tag_index, step, tag_count)
    return tag_index, step, wall_time


MEDIA_MAX_PER_BATCH = 1_000  # audio clips, or videos, in one batch
# One WAV file or one APNG/GIF: the SDK takes up to 48 MiB of samples or pixels at the call and encodes
# them later, so the encoded file gets room beyond that (chunk headers, incompressible frames).
AUDIO_MAX_BYTES = 56 << 20
VIDEO_MAX_BYTES = 56 << 20
VIDEO_MAX_PIXELS = 1 << 28  # width x height x frames: what decoding it costs, here and in a browser


def _decode_audio(message: pb.Audio, tag_count: int, limits: Limits) -> AudioColumns:
    wavs = list(message.wav)
    tag_index, step, wall_time = _point_keys(message, "audio", tag_count, wav=len(wavs))
    if len(wavs) > MEDIA_MAX_PER_BATCH:
        raise InvalidBatch("audio.wav", f"{len(wavs)} clips in one batch; the limit is {MEDIA_MAX_PER_BATCH}")
    infos = _parse_files("audio.wav", wavs, AUDIO_MAX_BYTES, "a clip", parse_wav)
    return AudioColumns(
        tag_index,
        step,
        wall_time,
        np.array([info.sample_rate for info in infos], np.float64),
        np.array([info.channels for info in infos], np.int32),
        np.array([info.frames for info in infos], np.int64),
        wavs,
    )


def _parse_files(field: str, blobs: list[bytes], max_bytes: int, what: str, parse: Callable[[bytes], T]) -> list[T]:
    """Each encoded file of a media field, size-checked then parsed; InvalidBatch names the one at fault."""
    parsed = []
    for i, blob in enumerate(blobs):
        if len(blob) > max_bytes:
            raise InvalidBatch(f"{field}[{i}]", f"{len(blob)} bytes; {what} may have at most {max_bytes}")
        try:
            parsed.append(parse(blob))
        except MediaError as exc:
            raise InvalidBatch(f"{field}[{i}]", str(exc)) from None
    return parsed


def _decode_videos(message: pb.Videos, tag_count: int, limits: Limits) -> VideoColumns:
    data = list(message.data)
    fps = _column(message.fps, "<f8", "videos.fps")
    tag_index, step, wall_time = _point_keys(message, "videos", tag_count, fps=len(fps), data=len(data))
    if len(data) > MEDIA_MAX_PER_BATCH:
        raise InvalidBatch("videos.data", f"{len(data)} videos in one batch; the limit is {MEDIA_MAX_PER_BATCH}")
    if not (np.isfinite(fps) & (fps > 0)).all():
        raise InvalidBatch("videos.fps", "frames per second must be finite and > 0")

    def parse(blob: bytes) -> VideoInfo:
        return parse_video(blob, limits.max_image_pixels, VIDEO_MAX_PIXELS)

    infos = _parse_files("videos.data", data, VIDEO_MAX_BYTES, "a video", parse)
    return VideoColumns(
        tag_index,
        step,
        wall_time,
        np.array([info.width for info in infos], np.int32),
        np.array([info.height for info in infos], np.int32),
        np.array([info.frames for info in infos], np.int32),
        fps,
        [info.mime for info in infos],
        data,
    )


PR_CURVE_MAX_THRESHOLDS = 10_000  # TensorBoard's default is 127


def _decode_pr_curves(message: pb.PrCurves, tag_count: int, limits: Limits) -> PrCurveColumns:
    thresholds = _column(message.thresholds, "<u4", "pr_curves.thresholds")
    tag_index, step, wall_time = _point_keys(message, "pr_curves", tag_count, thresholds=len(thresholds))
    t = thresholds.astype(np.int64)
    if t.size and not (t.min() >= 2 and t.max() <= PR_CURVE_MAX_THRESHOLDS):
        raise InvalidBatch("pr_curves.thresholds", f"a curve needs 2 to {PR_CURVE_MAX_THRESHOLDS} thresholds")
    values = _column(message.values, "<f8", "pr_curves.values")
    if values.size != 6 * int(t.sum()):
        raise InvalidBatch("pr_curves.values", f"has {values.size} values; 6 x thresholds add up to {6 * int(t.sum())}")
    offsets = np.concatenate(([0], np.cumsum(t))).astype(np.int64)
    # Curve i holds 6 rows of t[i] values from 6 * offsets[i]: row r's j-th value is at 6 * offsets[i] + r * t[i] + j.
    within = np.arange(int(t.sum()), dtype=np.int64) - np.repeat(offsets[:-1], t)
    base = np.repeat(6 * offsets[:-1], t) + within
    step_t = np.repeat(t, t)
    rows = [values[base + r * step_t] for r in range(6)]
    counts, ratios = np.stack(rows[:4]), np.stack(rows[4:])
    if not (np.isfinite(counts) & (counts >= 0)).all():
        raise InvalidBatch("pr_curves.values", "true/false positives/negatives must be finite and >= 0")
    if ((ratios < 0) | (ratios > 1) | np.isinf(ratios)).any():
        raise InvalidBatch("pr_curves.values", "precision and recall must be in [0, 1], or NaN")
    return PrCurveColumns(tag_index, step, wall_time, thresholds.astype(np.int32), offsets, *rows)


MESH_MAX_VERTICES = 10_000_000  # per mesh (and faces likewise); one message holds 64 MiB anyway
MESH_MAX_CONFIG_CHARS = 64 << 10


def _decode_meshes(message: pb.Meshes, tag_count: int, limits: Limits) -> MeshColumns:
    per_mesh = {
        name: _column(getattr(message, name), "<u4", f"meshes.{name}")
        for name in ("sample", "vertex_count", "face_count", "color_count")
    }
    configs = list(message.config)
    lengths = {name: len(v) for name, v in per_mesh.items()}
    if configs:
        lengths["config"] = len(configs)
    tag_index, step, wall_time = _point_keys(message, "meshes", tag_count, **lengths)
    vc, fc, cc = (per_mesh[k].astype(np.int64) for k in ("vertex_count", "face_count", "color_count"))
    if vc.size and not (vc.min() >= 1 and vc.max() <= MESH_MAX_VERTICES):
        raise InvalidBatch("meshes.vertex_count", f"a mesh needs 1 to {MESH_MAX_VERTICES} vertices")
    if fc.size and fc.max() > MESH_MAX_VERTICES:
        raise InvalidBatch("meshes.face_count", f"a mesh may have at most {MESH_MAX_VERTICES} faces")
    if ((cc != 0) & (cc != vc)).any():
        bad = int(np.flatnonzero((cc != 0) & (cc != vc))[0])
        raise InvalidBatch(
            "meshes.color_count",
            f"mesh {bad} has {int(cc[bad])} colours for {int(vc[bad])} vertices; give 0 or one per vertex",
        )
    vertices = _column(message.vertices, "<f4", "meshes.vertices")
    colors = _column(message.colors, "u1", "meshes.colors")
    faces = _column(message.faces, "<u4", "meshes.faces")
    for field, array, count in (("vertices", vertices, vc), ("colors", colors, cc), ("faces", faces, fc)):
        if array.size != 3 * int(count.sum()):
            expected = 3 * int(count.sum())
            raise InvalidBatch(f"meshes.{field}", f"has {array.size} values; 3 per item add up to {expected}")
    if not np.isfinite(vertices).all():
        raise InvalidBatch("meshes.vertices", "vertices must be finite")
    if faces.size:
        limit = np.repeat(vc, 3 * fc)  # each face index against its own mesh's vertices
        if (faces >= limit).any():
            at = int(np.flatnonzero(faces >= limit)[0])
            mesh = int(np.searchsorted(np.cumsum(3 * fc), at, side="right"))
            raise InvalidBatch(
                "meshes.faces",
                f"mesh {mesh} has a face with vertex {int(faces[at])}, but only {int(vc[mesh])} vertices",
            )
    config = [_mesh_config(item, f"meshes.config[{i}]") for i, item in enumerate(configs)] or ["{}"] * len(vc)

    def offsets(count: np.ndarray) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(3 * count))).astype(np.int64)

    return MeshColumns(
        tag_index,
        step,
        wall_time,
        per_mesh["sample"].astype(np.int32),
        vc.astype(np.int32),
        fc.astype(np.int32),
        cc.astype(np.int32),
        offsets(vc),
        offsets(cc),
        offsets(fc),
        vertices,
        colors,
        faces.astype(np.int32),
        config,
    )


def _mesh_config(item: str, field: str) -> str:
    if not item:
        return "{}"
    if len(item) > MESH_MAX_CONFIG_CHARS:
        raise InvalidBatch(field, f"{len(item)} characters; a mesh's config may have at most {MESH_MAX_CONFIG_CHARS}")
    try:
        parsed = json.loads(item, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidBatch(field, f"is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidBatch(field, "must be a JSON object (camera, lights, material), or empty")
    return item


TENSOR_DTYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"}
)
TENSOR_MAX_NDIM = 32
TENSOR_MAX_DIM = 1 << 40


def _decode_tensors(message: pb.Tensors, tag_count: int, limits: Limits) -> TensorColumns:
    dtypes = list(message.dtype)
    data = list(message.data)
    ndim = _column(message.ndim, "<u4", "tensors.ndim")
    tag_index, step, wall_time = _point_keys(
        message, "tensors", tag_count, dtype=len(dtypes), ndim=len(ndim), data=len(data)
    )
    n = ndim.astype(np.int64)
    if n.size and n.max() > TENSOR_MAX_NDIM:
        raise InvalidBatch("tensors.ndim", f"a tensor may have at most {TENSOR_MAX_NDIM} dimensions")
    shape = _column(message.shape, "<u8", "tensors.shape")
    if shape.size != int(n.sum()):
        raise InvalidBatch("tensors.shape", f"has {shape.size} values; ndim adds up to {int(n.sum())}")
    if shape.size and int(shape.max()) > TENSOR_MAX_DIM:
        raise InvalidBatch("tensors.shape", f"a dimension may be at most {TENSOR_MAX_DIM}")
    offsets = np.concatenate(([0], np.cumsum(n))).astype(np.int64)
    dims = shape.astype(np.int64)
    for i, (dtype, blob) in enumerate(zip(dtypes, data)):
        if dtype not in TENSOR_DTYPES:
            raise InvalidBatch(f"tensors.dtype[{i}]", f"{dtype!r} is not one of {', '.join(sorted(TENSOR_DTYPES))}")
        size = math.prod(int(d) for d in dims[offsets[i] : offsets[i + 1]]) * np.dtype(dtype).itemsize
        if len(blob) != size:
            raise InvalidBatch(
                f"tensors.data[{i}]", f"{len(blob)} bytes; shape and dtype {dtype} need {size} (prod(shape) x itemsize)"
            )
    return TensorColumns(tag_index, step, wall_time, dtypes, offsets, dims, data)


TAG_INFO_MAX_NAME_CHARS = 1_000
TAG_INFO_MAX_DESCRIPTION_CHARS = 64 << 10


def _decode_tag_info(items: list[pb.TagInfo], limits: Limits) -> tuple[TagInfoRow, ...]:
    if len(items) > limits.max_tags_per_batch:
        raise InvalidBatch("tag_info", f"{len(items)} entries; the limit is {limits.max_tags_per_batch}")
    out = []
    for i, item in enumerate(items):
        _check_tags_field(item.tag, f"tag_info[{i}].tag", limits)
        if len(item.display_name) > TAG_INFO_MAX_NAME_CHARS:
            raise InvalidBatch(f"tag_info[{i}].display_name", f"at most {TAG_INFO_MAX_NAME_CHARS} characters")
        if len(item.description) > TAG_INFO_MAX_DESCRIPTION_CHARS:
            raise InvalidBatch(f"tag_info[{i}].description", f"at most {TAG_INFO_MAX_DESCRIPTION_CHARS} characters")
        if "\x00" in item.display_name or "\x00" in item.description:
            raise InvalidBatch(f"tag_info[{i}]", "contains a NUL character")
        out.append(TagInfoRow(item.tag, item.display_name, item.description))
    return tuple(out)


def _check_tags_field(tag: str, field: str, limits: Limits) -> None:
    if not tag:
        raise InvalidBatch(field, "a tag must not be empty")
    if len(tag.encode("utf-8")) > limits.max_tag_bytes:
        raise InvalidBatch(field, f"longer than {limits.max_tag_bytes} bytes of UTF-8")
    if "\x00" in tag:
        raise InvalidBatch(field, "contains a NUL character")


LAYOUT_MAX_CHARS = 1 << 20
LAYOUT_SHAPE = (
    '{"categories": [{"title": str, "closed": bool, "charts": [{"title": str, "multiline": {"tags": [regex, ...]}} '
    '| {"title": str, "margin": {"series": [{"value": tag, "lower": tag, "upper": tag}, ...]}}]}]}'
)


def _check_layout(layout: str) -> str:
    """tensorboardX's custom-scalar layout as JSON, checked against its documented shape; returned as sent."""
    field = "custom_scalars_layout"
    if len(layout) > LAYOUT_MAX_CHARS:
        raise InvalidBatch(field, f"{len(layout)} characters; a layout may have at most {LAYOUT_MAX_CHARS}")
    try:
        parsed = json.loads(layout, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidBatch(field, f"is not JSON: {exc}") from None
    categories = parsed.get("categories") if isinstance(parsed, dict) else None
    if not isinstance(categories, list):
        raise InvalidBatch(field, f"must be a JSON object of the shape {LAYOUT_SHAPE}")
    for i, category in enumerate(categories):
        where = f"{field}.categories[{i}]"
        if not (isinstance(category, dict) and isinstance(category.get("title"), str)):
            raise InvalidBatch(where, 'must be an object with a string "title" and a list "charts"')
        if not isinstance(category.get("closed", False), bool):
            raise InvalidBatch(f"{where}.closed", "must be true or false")
        charts = category.get("charts")
        if not isinstance(charts, list):
            raise InvalidBatch(f"{where}.charts", "must be a list of charts")
        for j, chart in enumerate(charts):
            _check_chart(chart, f"{where}.charts[{j}]")
    return layout


def _check_chart(chart: object, where: str) -> None:
    if not (isinstance(chart, dict) and isinstance(chart.get("title"), str)):
        raise InvalidBatch(where, 'must be an object with a string "title" and "multiline" or "margin"')
    if ("multiline" in chart) == ("margin" in chart):
        raise InvalidBatch(where, 'must have exactly one of "multiline" and "margin"')
    if "multiline" in chart:
        tags = chart["multiline"].get("tags") if isinstance(chart["multiline"], dict) else None
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise InvalidBatch(f"{where}.multiline.tags", "must be a list of strings (regular expressions of tags)")
        for k, pattern in enumerate(tags):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidBatch(f"{where}.multiline.tags[{k}]", f"is not a regular expression: {exc}") from None
        return
    series = chart["margin"].get("series") if isinstance(chart["margin"], dict) else None
    if not isinstance(series, list):
        raise InvalidBatch(f"{where}.margin.series", 'must be a list of {"value", "lower", "upper"} tags')
    for k, item in enumerate(series):
        if not (isinstance(item, dict) and all(isinstance(item.get(key), str) for key in ("value", "lower", "upper"))):
            raise InvalidBatch(f"{where}.margin.series[{k}]", 'must be an object of the tags "value", "lower", "upper"')


# Each kind's decoder, by kind name (store/kinds.py; tests/unit/test_kinds.py: one per kind).
DECODERS: dict[str, Callable[[Any, int, Limits], Any]] = {
    SCALAR.name: _decode_scalars,
    HISTOGRAM.name: _decode_histograms,
    IMAGE.name: _decode_images,
    TEXT.name: _decode_texts,
    GRAPH.name: _decode_graphs,
    EMBEDDING.name: _decode_embeddings,
    AUDIO.name: _decode_audio,
    VIDEO.name: _decode_videos,
    PR_CURVE.name: _decode_pr_curves,
    MESH.name: _decode_meshes,
    TENSOR.name: _decode_tensors,
}
