"""Turning buffered points into columnar wire batches. Pure: no I/O, no threads.

Runs on the sender thread, so the training thread never pays for it.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Protocol

import numpy as np
from PIL import Image

from runstream._histograms import BinnedBlock, bin_equal_width, summarize_binned
from runstream._media import encode_apng, encode_wav
from runstream.v1 import ingest_pb2 as pb

logger = logging.getLogger("runstream")

# step, wall time, tags, values: one little-endian float64 per tag, packed by Run.log (struct does the
# type check and the conversion in one C call, and bytes are not tracked by the garbage collector)
ScalarRow = tuple[int, float, tuple[str, ...], bytes]


@dataclass(frozen=True)
class RawHistogram:
    values: np.ndarray
    bins: int | str | np.ndarray


@dataclass(frozen=True)
class BinnedHistogram:
    counts: np.ndarray
    edges: np.ndarray


HistogramRow = tuple[str, int, float, RawHistogram | BinnedHistogram]
ImageRow = tuple[str, int, float, np.ndarray, str]  # tag, step, wall time, HWC uint8 or float, boxes JSON or ""
TextRow = tuple[str, int, float, str]  # tag, step, wall time, text
GraphRow = tuple[str, int, float, str]  # tag, step, wall time, graph document as JSON


@dataclass(frozen=True)
class AudioClip:
    samples: np.ndarray  # frames x channels float32, amplitudes in [-1, 1]
    sample_rate: float


@dataclass(frozen=True)
class VideoClip:
    frames: np.ndarray  # T x H x W x C uint8
    fps: float


@dataclass(frozen=True)
class Mesh:
    sample: int  # the mesh's index in its logged batch
    vertices: np.ndarray  # N x 3 float32
    colors: np.ndarray | None  # N x 3 uint8
    faces: np.ndarray | None  # F x 3 uint32
    config: str  # JSON object, or ""


# The kinds that Run.log_audio, log_video, log_pr_curve, log_mesh and log_tensor buffer, by the Batch
# field that carries them. A row is (tag, step, wall time, payload): an AudioClip, a VideoClip, a
# 6 x T float64 PR curve (runstream._prcurve), a Mesh, or a tensor (NumPy array).
MEDIA_FIELDS = ("audio", "videos", "pr_curves", "meshes", "tensors")
MediaRow = tuple[str, int, float, Any]


EMBEDDING_CHUNK_BYTES = 8 << 20  # vectors, raw image pixels and metadata of one chunk: well under 64 MiB


@dataclass
class EmbeddingJob:
    """One logged embedding, which the sender takes a chunk of rows at a time (`next_row` is the
    sender's). `matrix` is a float32 copy made at the call, or, for an embedding too big to copy
    (`counted` False: not in the buffers' byte budget), the caller's array, converted per chunk while
    the call waits for `done`."""

    tag: str
    step: int
    wall_time: float
    matrix: np.ndarray  # N x D
    columns: tuple[str, ...]  # metadata column names
    metadata: list[list[Any]]  # one list of N JSON-ready values per column
    images: np.ndarray | None  # N x H x W x C
    chunk_rows: int
    counted: bool
    next_row: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def rows(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def row_bytes(self) -> int:
        """Bytes per row held for this job: float32 values and raw image pixels."""
        pixels = int(np.prod(self.images.shape[1:])) * self.images.itemsize if self.images is not None else 0
        return int(self.matrix.shape[1]) * 4 + pixels


EmbeddingChunk = tuple[EmbeddingJob, int, int]  # job, first row, rows


def embedding_chunk_rows(dims: int, image_bytes: int, metadata_bytes: int) -> int:
    """Rows per chunk: EMBEDDING_CHUNK_BYTES of vectors, raw images and (estimated) metadata JSON."""
    return max(1, EMBEDDING_CHUNK_BYTES // (dims * 4 + image_bytes + metadata_bytes))


@dataclass(frozen=True)
class EncodedBatch:
    seq: int
    message: pb.Batch
    points: int  # scalars + histograms + images, for reporting what was (not) sent
    size: int  # bytes on the wire


class _TagDictionary:
    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def index(self, tags: Sequence[str]) -> np.ndarray:
        ids = self.ids
        return np.array([ids.setdefault(t, len(ids)) for t in tags], dtype="<u4")


MAX_VISDOM_CALLS = 10_000  # per batch (the server's limit)


class VisdomCallSource(Protocol):
    """A call of runstream.visdom.Visdom, queued at once; its messages are built on the sender thread."""

    def messages(self) -> list[tuple[str, bytes]]:
        """(endpoint, JSON body) pairs, as the visdom client would POST them."""
        ...

    def failed(self, error: Exception) -> None:
        """Its messages could not be built (visdom's code rejected the call's arguments)."""
        ...


def encode_visdom_calls(calls: Sequence[VisdomCallSource]) -> list[pb.VisdomCall]:
    """The calls' messages, in order; a call whose messages cannot be built is told so and left out."""
    out: list[pb.VisdomCall] = []
    for call in calls:
        try:
            messages = call.messages()
        except Exception as exc:  # visdom's code asserts on its arguments
            call.failed(exc)
            continue
        out.extend(pb.VisdomCall(endpoint=endpoint, body=body) for endpoint, body in messages)
    return out


def encode_batch(
    run_id: str,
    rank: int,
    writer_id: str,
    seq: int,
    scalars: Sequence[ScalarRow],
    histograms: Sequence[HistogramRow] = (),
    images: Sequence[ImageRow] = (),
    texts: Sequence[TextRow] = (),
    graphs: Sequence[GraphRow] = (),
    embeddings: Sequence[EmbeddingChunk] = (),
    media: Mapping[str, Sequence[MediaRow]] | None = None,
    tag_info: Sequence[pb.TagInfo] = (),
    custom_scalars_layout: str = "",
    visdom_calls: Sequence[pb.VisdomCall] = (),
) -> EncodedBatch:
    """One wire batch of the rows given; `media` maps a field of MEDIA_FIELDS to its rows (WAV and APNG
    are encoded here, on the sender thread)."""
    tags = _TagDictionary()
    message = pb.Batch(run_id=run_id, rank=rank, writer_id=writer_id, seq=seq)
    points = size = 0
    if scalars:
        points = _encode_scalars(message.scalars, scalars, tags)
        size = points * 8
    if histograms:
        encoded = _encode_histograms(histograms, tags)
        if encoded is not None:
            message.histograms.CopyFrom(encoded)
            points += len(message.histograms.step) // 8
    if images:
        message.images.CopyFrom(_encode_images(images, tags))
        points += len(images)
    if texts:
        message.texts.CopyFrom(
            pb.Texts(
                tag_index=tags.index([r[0] for r in texts]).tobytes(),
                step=np.array([r[1] for r in texts], "<i8").tobytes(),
                wall_time=np.array([r[2] for r in texts], "<f8").tobytes(),
                text=[r[3] for r in texts],
            )
        )
        points += len(texts)
    if graphs:
        message.graphs.CopyFrom(
            pb.Graphs(
                tag_index=tags.index([r[0] for r in graphs]).tobytes(),
                step=np.array([r[1] for r in graphs], "<i8").tobytes(),
                wall_time=np.array([r[2] for r in graphs], "<f8").tobytes(),
                doc=[r[3] for r in graphs],
            )
        )
        points += len(graphs)
        size += sum(len(r[3]) for r in graphs)
    if embeddings:
        message.embeddings.CopyFrom(_encode_embeddings(embeddings, tags))
        points += sum(rows for _, _, rows in embeddings)
        size += len(message.embeddings.vectors) + sum(len(d) for d in message.embeddings.image)
    for name, rows in (media or {}).items():
        if rows:
            size += _MEDIA_ENCODERS[name](getattr(message, name), rows, tags)
            points += len(rows)
    message.tag_info.extend(tag_info)
    message.custom_scalars_layout = custom_scalars_layout
    if visdom_calls:
        message.visdom_calls.extend(visdom_calls)
        points += len(visdom_calls)
        size += sum(len(call.body) for call in visdom_calls)
    message.tags.extend(tags.ids)
    size += len(message.histograms.counts) + sum(len(d) for d in message.images.data) + 4096
    return EncodedBatch(seq=seq, message=message, points=points, size=size)


def _encode_scalars(out: pb.Scalars, rows: Sequence[ScalarRow], tags: _TagDictionary) -> int:
    """Fill `out` with the points of `rows` in the by-row form (a step and a wall time per row); returns
    their number.

    Run.log hands over the same tags tuple object while the dict's shape does not change, so a block of
    calls with one shape is found by identity; its values are already packed, so they are only joined.
    """
    tag_index: list[np.ndarray] = []
    row_points: list[np.ndarray] = []
    values: list[bytes] = []
    points = 0
    kept: list[Sequence[ScalarRow]] = []
    for keys, block in _blocks_by_tags(rows):
        width, count = len(keys), len(block)
        if width == 0:
            continue
        kept.append(block)
        tag_index.append(np.tile(tags.index(keys), count))
        row_points.append(np.full(count, width, "<u4"))
        values.extend(map(itemgetter(3), block))
        points += width * count
    ordered = kept[0] if len(kept) == 1 else [row for block in kept for row in block]
    out.tag_index = _le(tag_index, "<u4")
    out.row_points = _le(row_points, "<u4")
    out.step = np.fromiter(map(itemgetter(0), ordered), "<i8", len(ordered)).tobytes()
    out.wall_time = np.fromiter(map(itemgetter(1), ordered), "<f8", len(ordered)).tobytes()
    out.value = b"".join(values)
    return points


def _blocks_by_tags(rows: Sequence[ScalarRow]) -> list[tuple[tuple[str, ...], Sequence[ScalarRow]]]:
    keys = list(map(itemgetter(2), rows))
    if keys.count(keys[0]) == len(keys):  # compares by identity first: C speed
        return [(keys[0], rows)]
    groups: dict[tuple[str, ...], list[ScalarRow]] = {}
    for row in rows:
        groups.setdefault(row[2], []).append(row)
    return list(groups.items())


def _le(parts: list[np.ndarray], dtype: str) -> bytes:
    if not parts:
        return b""
    return np.concatenate(parts).astype(dtype, copy=False).tobytes()


def bin_values(values: np.ndarray, bins: int | str | np.ndarray) -> BinnedBlock | None:
    """One histogram of the finite values (as float64); None if there are none."""
    flat = values.reshape(-1).astype(np.float64, copy=False)
    finite_mask = np.isfinite(flat)
    if not finite_mask.all():
        flat = flat[finite_mask]
    if flat.size == 0:
        return None
    if isinstance(bins, int):
        return bin_equal_width(flat[None, :], bins)
    counts, edges = np.histogram(flat, bins=bins)
    return BinnedBlock(
        counts=[counts.astype(np.float64)],
        edges=[edges.astype(np.float64)],
        min=flat.min(keepdims=True),
        max=flat.max(keepdims=True),
        sum=flat.sum(keepdims=True),
        sum_squares=np.dot(flat, flat).reshape(1),
    )


def _bin_rows(rows: Sequence[HistogramRow]) -> list[tuple[list[HistogramRow], BinnedBlock]]:
    """Bin raw rows, a block of same-sized, same-bins, all-finite histograms at a time."""
    blocks: list[tuple[list[HistogramRow], BinnedBlock]] = []
    prebinned = [r for r in rows if isinstance(r[3], BinnedHistogram)]
    if prebinned:
        counts = [r[3].counts for r in prebinned]  # type: ignore[union-attr]
        edges = [r[3].edges for r in prebinned]  # type: ignore[union-attr]
        blocks.append((prebinned, summarize_binned(counts, edges)))
    groups: dict[tuple[int, int], list[HistogramRow]] = {}
    one_by_one: list[HistogramRow] = []
    for row in rows:
        histogram = row[3]
        if isinstance(histogram, RawHistogram):
            if isinstance(histogram.bins, int):
                groups.setdefault((histogram.values.size, histogram.bins), []).append(row)
            else:
                one_by_one.append(row)
    for (_, bins), group in groups.items():
        values = np.stack([r[3].values.reshape(-1) for r in group]).astype(np.float64, copy=False)  # type: ignore[union-attr]
        finite = np.asarray(np.isfinite(values).all(axis=1))
        if not finite.all():
            one_by_one.extend(r for r, ok in zip(group, finite) if not ok)
            group = [r for r, ok in zip(group, finite) if ok]
            values = values[finite]
        if group:
            blocks.append((group, bin_equal_width(values, bins)))
    for row in one_by_one:
        raw = row[3]
        assert isinstance(raw, RawHistogram)
        block = bin_values(raw.values, raw.bins)
        if block is None:
            logger.warning("runstream: histogram %r at step %d has no finite values; not logged", row[0], row[1])
        else:
            blocks.append(([row], block))
    return blocks


def _encode_histograms(rows: Sequence[HistogramRow], tags: _TagDictionary) -> pb.Histograms | None:
    blocks = _bin_rows(rows)
    if not blocks:
        return None
    kept = [row for block_rows, _ in blocks for row in block_rows]
    counts = [c for _, block in blocks for c in block.counts]
    return pb.Histograms(
        tag_index=tags.index([r[0] for r in kept]).tobytes(),
        step=np.fromiter(map(itemgetter(1), kept), "<i8", len(kept)).tobytes(),
        wall_time=np.fromiter(map(itemgetter(2), kept), "<f8", len(kept)).tobytes(),
        bucket_count=np.fromiter(map(len, counts), "<u4", len(counts)).tobytes(),
        edges=_le([e for _, block in blocks for e in block.edges], "<f8"),
        counts=_le(counts, "<f8"),
        min=_le([block.min for _, block in blocks], "<f8"),
        max=_le([block.max for _, block in blocks], "<f8"),
        sum=_le([block.sum for _, block in blocks], "<f8"),
        sum_squares=_le([block.sum_squares for _, block in blocks], "<f8"),
    )


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an HWC image; floats are clipped to [0, 1] and scaled to 0..255."""
    if image.dtype != np.uint8:
        image = (np.clip(np.nan_to_num(image.astype(np.float64)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    pixels = image[:, :, 0] if image.shape[2] == 1 else image
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _encode_images(rows: Sequence[ImageRow], tags: _TagDictionary) -> pb.Images:
    return pb.Images(
        tag_index=tags.index([r[0] for r in rows]).tobytes(),
        step=np.array([r[1] for r in rows], "<i8").tobytes(),
        wall_time=np.array([r[2] for r in rows], "<f8").tobytes(),
        data=[encode_png(r[3]) for r in rows],
        boxes=[r[4] for r in rows] if any(r[4] for r in rows) else [],
    )


def _head(out: Any, rows: Sequence[MediaRow], tags: _TagDictionary) -> None:
    out.tag_index = tags.index([r[0] for r in rows]).tobytes()
    out.step = np.array([r[1] for r in rows], "<i8").tobytes()
    out.wall_time = np.array([r[2] for r in rows], "<f8").tobytes()


def _encode_audio(out: pb.Audio, rows: Sequence[MediaRow], tags: _TagDictionary) -> int:
    _head(out, rows, tags)
    out.wav.extend(encode_wav(r[3].samples, r[3].sample_rate) for r in rows)
    return sum(len(w) for w in out.wav)


def _encode_videos(out: pb.Videos, rows: Sequence[MediaRow], tags: _TagDictionary) -> int:
    _head(out, rows, tags)
    out.fps = np.array([r[3].fps for r in rows], "<f8").tobytes()
    out.data.extend(encode_apng(r[3].frames, r[3].fps) for r in rows)
    return sum(len(d) for d in out.data)


def _encode_pr_curves(out: pb.PrCurves, rows: Sequence[MediaRow], tags: _TagDictionary) -> int:
    _head(out, rows, tags)
    out.thresholds = np.array([r[3].shape[1] for r in rows], "<u4").tobytes()
    out.values = _le([r[3].reshape(-1) for r in rows], "<f8")
    return len(out.values)


def _encode_meshes(out: pb.Meshes, rows: Sequence[MediaRow], tags: _TagDictionary) -> int:
    _head(out, rows, tags)
    meshes: list[Mesh] = [r[3] for r in rows]
    out.sample = np.array([m.sample for m in meshes], "<u4").tobytes()
    out.vertex_count = np.array([len(m.vertices) for m in meshes], "<u4").tobytes()
    out.face_count = np.array([0 if m.faces is None else len(m.faces) for m in meshes], "<u4").tobytes()
    out.color_count = np.array([0 if m.colors is None else len(m.colors) for m in meshes], "<u4").tobytes()
    out.vertices = _le([m.vertices.reshape(-1) for m in meshes], "<f4")
    out.colors = _le([m.colors.reshape(-1) for m in meshes if m.colors is not None], "u1")
    out.faces = _le([m.faces.reshape(-1) for m in meshes if m.faces is not None], "<u4")
    out.config.extend(m.config for m in meshes)
    return len(out.vertices) + len(out.colors) + len(out.faces)


def _encode_tensors(out: pb.Tensors, rows: Sequence[MediaRow], tags: _TagDictionary) -> int:
    _head(out, rows, tags)
    arrays: list[np.ndarray] = [r[3] for r in rows]
    out.dtype.extend(a.dtype.name for a in arrays)
    out.ndim = np.array([a.ndim for a in arrays], "<u4").tobytes()
    out.shape = np.array([d for a in arrays for d in a.shape], "<u8").tobytes()
    out.data.extend(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes() for a in arrays)
    return sum(len(d) for d in out.data)


_MEDIA_ENCODERS: dict[str, Callable[[Any, Sequence[MediaRow], _TagDictionary], int]] = {
    "audio": _encode_audio,
    "videos": _encode_videos,
    "pr_curves": _encode_pr_curves,
    "meshes": _encode_meshes,
    "tensors": _encode_tensors,
}


def media_points(message: pb.Batch) -> int:
    """Points of the MEDIA_FIELDS kinds in a batch (one per clip, video, curve, mesh, tensor)."""
    return sum(len(getattr(message, name).step) // 8 for name in MEDIA_FIELDS if message.HasField(name))


def _encode_embeddings(chunks: Sequence[EmbeddingChunk], tags: _TagDictionary) -> pb.Embeddings:
    """Chunks of rows as little-endian float32 (converted here for a matrix that was not copied),
    each row's metadata as a JSON object and its image as PNG."""
    out = pb.Embeddings(
        tag_index=tags.index([job.tag for job, _, _ in chunks]).tobytes(),
        step=np.array([job.step for job, _, _ in chunks], "<i8").tobytes(),
        wall_time=np.array([job.wall_time for job, _, _ in chunks], "<f8").tobytes(),
        first_row=np.array([first for _, first, _ in chunks], "<u4").tobytes(),
        rows=np.array([rows for _, _, rows in chunks], "<u4").tobytes(),
        dims=np.array([job.matrix.shape[1] for job, _, _ in chunks], "<u4").tobytes(),
        total_rows=np.array([job.rows for job, _, _ in chunks], "<u4").tobytes(),
        vectors=b"".join(
            np.ascontiguousarray(job.matrix[first : first + rows], dtype="<f4").tobytes() for job, first, rows in chunks
        ),
    )
    if any(job.columns for job, _, _ in chunks):
        for job, first, rows in chunks:
            out.metadata.extend(_metadata_json(job, first, rows))
    if any(job.images is not None for job, _, _ in chunks):
        for job, first, rows in chunks:
            if job.images is None:
                out.image.extend([b""] * rows)
            else:
                out.image.extend(encode_png(np.ascontiguousarray(image)) for image in job.images[first : first + rows])
    return out


def _metadata_json(job: EmbeddingJob, first: int, rows: int) -> list[str]:
    """Each row's metadata as a JSON object of its columns (values were made JSON-ready at the call)."""
    if not job.columns:
        return [""] * rows
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    if len(job.columns) == 1:
        key = dumps(job.columns[0])
        return ["{" + key + ":" + dumps(value) + "}" for value in job.metadata[0][first : first + rows]]
    columns = [column[first : first + rows] for column in job.metadata]
    return [dumps(dict(zip(job.columns, values))) for values in zip(*columns)]
