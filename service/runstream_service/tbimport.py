"""Reading TensorBoard event files (tfevents) into runstream's wire batches (`runstream import-tensorboard`).

A run per directory that holds event files, as TensorBoard sees them; the run's name is the
directory relative to LOGDIR. Records are read with their framing checked (length, masked CRC32C
of the length, data, masked CRC32C of the data); a truncated last record (a job killed mid-write)
or a corrupt record is reported, not fatal. Events are parsed with runstream's own minimal
definition of the format (proto/runstream/tbcompat/event.proto), many records per parser call; the
plugins' own forms (PR curves, audio, meshes, ...) are decoded in tbplugins.py.

Each event file is its own writer (its id derived from the run id and the file's name, so it is the
same on every import), and a batch holds the points of a contiguous range of its records, every kind
together, with the file offset where the range ends (Batch.source_offset). The server commits that
offset with the writer's seq, so an import (or a follower, tbfollow.py) goes on from where the last
one stopped: a grown file's new records are read, and none is stored twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from runstream.tbcompat import event_pb2 as tb
from runstream.v1 import ingest_pb2 as pb
from runstream_service import tbplugins
from runstream_service.tbplugins import Mesh, MeshPart, RawTensor
from runstream_service.tbprojector import ProjectorEmbedding, embedding_chunks, read_projector

if TYPE_CHECKING:
    from runstream_service.tbfollow import ImportedRun

try:
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - the [server] extra installs google-crc32c
    _crc32c = None

_MASK_DELTA = 0xA282EAD8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
CHUNK_RECORDS = 20_000  # records parsed per protobuf call
CHUNK_BYTES = 8 << 20  # record bytes parsed per protobuf call, at most (one record may be larger)
# A batch is cut after the record that fills one of these; the server's limits are 64 MiB a message,
# 1,000 images and 10,000 texts or tags a batch.
SCALARS_PER_BATCH = 200_000
BATCH_BYTES = 16 << 20  # of points other than scalars
BATCH_ITEMS = 1_000  # points other than scalars
MAX_TAGS_PER_BATCH = 5_000
COMPACT_EVERY = 1_000_000  # scalars kept in Python lists before they move into NumPy columns

_VARINT_1 = [bytes((0x0A, n)) for n in range(128)]


def _crc32c_python(data: bytes) -> int:  # pragma: no cover - fallback without google-crc32c
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = _crc32c(data) if _crc32c is not None else _crc32c_python(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _field1_header(length: int) -> bytes:
    """The tag byte and varint length that make a record field 1 of EventList."""
    if length < 128:
        return _VARINT_1[length]
    out = bytearray([0x0A])
    while length >= 0x80:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out)


@dataclass
class Points:
    """The points of a range of records, as columns: what one batch carries.

    `heavy_bytes` counts everything but scalars (images, audio, meshes, ...), so that a batch can be
    cut before it grows past the server's message limit.
    """

    tags: dict[str, int] = field(default_factory=dict)
    scalar_tag: list[int] = field(default_factory=list)
    scalar_step: list[int] = field(default_factory=list)
    scalar_wall: list[float] = field(default_factory=list)
    scalar_value: list[float] = field(default_factory=list)
    scalar_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    histograms: list[tuple[int, int, float, np.ndarray, np.ndarray, float, float, float, float]] = field(
        default_factory=list
    )
    images: list[tuple[int, int, float, bytes]] = field(default_factory=list)
    texts: list[tuple[int, int, float, str]] = field(default_factory=list)
    graphs: list[tuple[int, int, float, str]] = field(default_factory=list)  # tag id, step, wall, document JSON
    audio: list[tuple[int, int, float, bytes]] = field(default_factory=list)  # a WAV file each
    videos: list[tuple[int, int, float, float, bytes]] = field(default_factory=list)  # fps, GIF
    pr_curves: list[tuple[int, int, float, int, np.ndarray]] = field(default_factory=list)  # T, 6 x T values
    meshes: list[tuple[int, int, float, Mesh]] = field(default_factory=list)
    tensors: list[tuple[int, int, float, RawTensor]] = field(default_factory=list)
    tag_info: dict[str, tuple[str, str]] = field(default_factory=dict)  # tag -> (display name, description)
    layout: str = ""  # the last custom-scalar layout, as JSON
    hparams: dict[str, Any] | None = None
    first_wall: float = 0.0
    last_wall: float = 0.0
    records: int = 0
    skipped: int = 0  # values runstream cannot store (negative steps, unknown plugins, ...)
    heavy_bytes: int = 0
    heavy_items: int = 0  # points of other kinds than scalars (the server limits some per batch)
    problems: list[str] = field(default_factory=list)

    def tag_id(self, tag: str) -> int:
        ids = self.tags
        tag_id = ids.get(tag)
        if tag_id is None:
            tag_id = ids[tag] = len(ids)
        return tag_id

    @property
    def points(self) -> int:
        others = len(self.histograms) + len(self.images) + len(self.texts) + len(self.graphs)
        others += len(self.audio) + len(self.videos) + len(self.pr_curves) + len(self.meshes) + len(self.tensors)
        return self.scalar_count + others

    @property
    def scalar_count(self) -> int:
        return len(self.scalar_step) + sum(len(part[1]) for part in self.scalar_parts)

    def compact(self) -> None:
        """Move the scalars read so far from Python lists into NumPy columns (8 bytes a value, not ~32)."""
        if self.scalar_step:
            self.scalar_parts.append(
                (
                    np.array(self.scalar_tag, np.int64),
                    np.array(self.scalar_step, "<i8"),
                    np.array(self.scalar_wall, "<f8"),
                    np.array(self.scalar_value, "<f8"),
                )
            )
            for column in (self.scalar_tag, self.scalar_step, self.scalar_wall, self.scalar_value):
                column.clear()  # in place: the reading loop holds these lists

    def wall_range(self) -> tuple[float, float]:
        """The first and last wall time among the points (0, 0 when there are none)."""
        self.compact()
        walls = [float(part[2].min()) for part in self.scalar_parts if len(part[2])]
        walls += [float(part[2].max()) for part in self.scalar_parts if len(part[2])]
        for items in (self.histograms, self.images, self.texts, self.graphs, self.audio, self.videos):
            walls += [item[2] for item in items[:1] + items[-1:]]
        for others in (self.pr_curves, self.meshes, self.tensors):
            walls += [item[2] for item in others[:1] + others[-1:]]
        return (min(walls), max(walls)) if walls else (0.0, 0.0)


@dataclass
class RunData(Points):
    """Everything read from one directory's event files (and its projector folder)."""

    name: str = ""
    directory: Path = Path()
    files: list[Path] = field(default_factory=list)
    embeddings: list[ProjectorEmbedding] = field(default_factory=list)  # the projector folder's (tbprojector.py)

    @property
    def points(self) -> int:
        return super().points + sum(e.rows for e in self.embeddings)


@dataclass
class FileState:
    """What reading one event file must remember between reads: the plugin of each tag (TF2 writers send a
    tag's metadata only with its first value), the graphs seen, the tag info already sent."""

    plugins: dict[str, str] = field(default_factory=dict)
    graphs: int = 0
    tag_info: dict[str, tuple[str, str]] = field(default_factory=dict)
    mesh_parts: list[MeshPart] = field(default_factory=list)  # of the event being read


def find_runs(logdir: Path) -> list[tuple[str, Path, list[Path]]]:
    """(name, directory, event files sorted by name) for every directory under logdir with event files."""
    found = []
    for directory, dirnames, filenames in os.walk(logdir):
        dirnames.sort()
        files = sorted(Path(directory) / f for f in filenames if "tfevents" in f)
        if files:
            rel = os.path.relpath(directory, logdir)
            name = logdir.resolve().name if rel == "." else rel.replace(os.sep, "/")
            found.append((name, Path(directory), files))
    return found


class RecordScanner:
    """The framed records of an event file's bytes, checked, as chunks of concatenated EventList fields.

    `base` is the file offset of data[0]. After iterating, `end` is the file offset just past the last
    record read or skipped, where a later read goes on; `unreadable` is set when a corrupt length makes
    the rest of the file unreadable. While `following`, a truncated last record is a record still being
    written: reading stops before it without a word.
    """

    def __init__(self, data: bytes, name: str, problems: list[str], base: int = 0, following: bool = False) -> None:
        self.data = data
        self.name = name
        self.problems = problems
        self.base = base
        self.following = following
        self.end = base
        self.unreadable = False

    def chunks(self) -> Iterator[tuple[bytes, list[int]]]:
        """(chunk, the file offset where each of its records ends)."""
        data, base, problems = self.data, self.base, self.problems
        offset, size = 0, len(data)
        pieces: list[bytes] = []
        ends: list[int] = []
        chunk_bytes = 0
        unpack_u64, unpack_u32, masked = _U64.unpack_from, _U32.unpack_from, masked_crc32c
        while offset < size:
            if offset + 12 > size:
                if not self.following:
                    problems.append(
                        f"{self.name}: truncated record at byte {base + offset} (the file ends in its header); ignored"
                    )
                break
            (length,) = unpack_u64(data, offset)
            if masked(data[offset : offset + 8]) != unpack_u32(data, offset + 8)[0]:
                problems.append(
                    f"{self.name}: corrupt record length at byte {base + offset} (CRC mismatch); the rest is unreadable"
                )
                self.unreadable = True
                break
            start = offset + 12
            end = start + length
            if end + 4 > size:
                if not self.following:
                    problems.append(
                        f"{self.name}: truncated last record at byte {base + offset} ({length} bytes announced); "
                        "ignored"
                    )
                break
            payload = data[start:end]
            offset = end + 4
            if masked(payload) != unpack_u32(data, end)[0]:
                problems.append(f"{self.name}: corrupt record at byte {base + start - 12} (data CRC mismatch); skipped")
                continue
            pieces.append(_field1_header(length))
            pieces.append(payload)
            ends.append(base + offset)
            chunk_bytes += length
            if len(ends) >= CHUNK_RECORDS or chunk_bytes >= CHUNK_BYTES:
                yield b"".join(pieces), ends
                pieces, ends, chunk_bytes = [], [], 0
        if pieces:
            yield b"".join(pieces), ends
        self.end = base + offset


def read_records(data: bytes, name: str, problems: list[str]) -> Iterator[bytes]:
    """The framed records of an event file's bytes, as chunks of concatenated EventList fields."""
    for chunk, _ in RecordScanner(data, name, problems).chunks():
        yield chunk


def read_points(scanner: RecordScanner, state: FileState) -> Iterator[tuple[Points, int]]:
    """The scanner's records as Points, cut where a batch is full, each with the file offset where its last
    record ends (the batch's source_offset). The last Points may hold no point: the records it covers (the
    file's version record, values runstream skips) still move the offset on."""
    points = Points()
    sent_upto = scanner.base
    mesh_parts = state.mesh_parts
    for chunk, ends in scanner.chunks():
        events = tb.EventList.FromString(chunk).event
        points.records += len(events)
        s_tag, s_step, s_wall, s_value = points.scalar_tag, points.scalar_step, points.scalar_wall, points.scalar_value
        tag_ids = points.tags
        for i, event in enumerate(events):
            full = False
            if event.HasField("graph_def"):  # add_graph: tag graph, a file's graphs numbered 0, 1, ...
                doc = json.dumps(graph_document_from_def(event.graph_def), separators=(",", ":"))
                points.graphs.append((points.tag_id("graph"), state.graphs, event.wall_time, doc))
                state.graphs += 1
                points.heavy_bytes += len(doc)
                points.heavy_items += 1
                full = True
            if not event.HasField("summary"):
                if not points.first_wall:
                    points.first_wall = event.wall_time
            elif event.step < 0:
                points.skipped += len(event.summary.value)
            else:
                step = event.step
                wall = event.wall_time
                for value in event.summary.value:
                    kind = value.WhichOneof("value")
                    tag = value.tag
                    if kind == "simple_value":
                        tag_id = tag_ids.get(tag)
                        if tag_id is None:  # a tag's display name is looked for once a batch
                            if value.HasField("metadata"):
                                _tag_info(points, state, tag, value.metadata)
                            tag_id = points.tag_id(tag)
                            full = len(tag_ids) >= MAX_TAGS_PER_BATCH
                        s_tag.append(tag_id)
                        s_step.append(step)
                        s_wall.append(wall)
                        s_value.append(value.simple_value)
                    else:
                        _read_other(points, state, value, kind, tag, step, wall)
                        full = True
                if mesh_parts:
                    _add_meshes(points, state, step, wall)
                if full:
                    full = (
                        points.heavy_bytes >= BATCH_BYTES
                        or points.heavy_items >= BATCH_ITEMS
                        or len(tag_ids) >= MAX_TAGS_PER_BATCH
                    )
            if full:
                sent_upto = ends[i]
                yield points, sent_upto
                points = Points()
                s_tag, s_step, s_wall, s_value = (
                    points.scalar_tag,
                    points.scalar_step,
                    points.scalar_wall,
                    points.scalar_value,
                )
                tag_ids = points.tags
        if not points.first_wall and s_wall:
            points.first_wall = s_wall[0]
        if points.scalar_count >= SCALARS_PER_BATCH:
            sent_upto = ends[-1]
            yield points, sent_upto
            points = Points()
        elif len(s_step) >= COMPACT_EVERY:
            points.compact()
    if scanner.end > sent_upto:
        yield points, scanner.end


def _tag_info(points: Points, state: FileState, tag: str, metadata: Any) -> None:
    """A tag's display name and description (SummaryMetadata), sent when they change."""
    info = (metadata.display_name, metadata.summary_description)
    if (info[0] or info[1]) and state.tag_info.get(tag) != info:
        state.tag_info[tag] = points.tag_info[tag] = info


def _read_other(
    points: Points, state: FileState, value: Any, kind: str | None, tag: str, step: int, wall: float
) -> None:
    plugins = state.plugins
    if value.HasField("metadata"):
        metadata = value.metadata
        if metadata.HasField("plugin_data"):
            plugins[tag] = metadata.plugin_data.plugin_name
        if kind == "histo" or kind == "image" or kind == "audio":
            _tag_info(points, state, tag, metadata)
    plugin = plugins.get(tag, "")
    points.heavy_items += 1
    if plugin == "hparams":  # the data is in the metadata; the value itself is empty or a dummy tensor
        if value.HasField("metadata"):
            _read_hparams(points, value.metadata.plugin_data.content)
    elif kind == "histo":
        h = value.histo
        _add_histogram(points, tag, step, wall, h.min, h.max, h.sum, h.sum_squares, h.bucket_limit, h.bucket)
    elif kind == "image":
        blob = value.image.encoded_image_string
        points.heavy_bytes += len(blob)
        fps = tbplugins.gif_video(blob)
        if fps is None:
            points.images.append((points.tag_id(tag), step, wall, blob))
        else:  # tensorboardX's add_video: an animated GIF
            points.videos.append((points.tag_id(tag), step, wall, fps, blob))
    elif kind == "audio" or plugin == "audio":
        clips = tbplugins.audio_clips(value, plugin)
        if not clips:
            points.skipped += 1
        for i, wav in enumerate(clips):
            points.audio.append((points.tag_id(tag if len(clips) == 1 else f"{tag}/audio/{i}"), step, wall, wav))
            points.heavy_bytes += len(wav)
    elif kind == "tensor":
        _read_tensor(points, state, value, plugin, tag, step, wall)
    else:
        points.skipped += 1


def _read_tensor(points: Points, state: FileState, value: Any, plugin: str, tag: str, step: int, wall: float) -> None:
    tensor = value.tensor
    if plugin == "text":
        texts = [s.decode("utf-8", "replace") for s in tensor.string_val]
        if texts:  # tensorboardX and torch add "/text_summary" to the tag the user gave
            text_tag = tag.removesuffix("/text_summary") or tag
            if value.HasField("metadata"):
                _tag_info(points, state, text_tag, value.metadata)
            text = "\n".join(texts)
            points.texts.append((points.tag_id(text_tag), step, wall, text))
            points.heavy_bytes += len(text) * 4
    elif plugin == "images" and len(tensor.string_val) > 2:
        for i, blob in enumerate(tensor.string_val[2:]):
            image_tag = tag if len(tensor.string_val) == 3 else f"{tag}/image/{i}"
            points.images.append((points.tag_id(image_tag), step, wall, blob))
            points.heavy_bytes += len(blob)
    elif plugin == "histograms":
        _read_tensor_histogram(points, tensor, tag, step, wall)
    elif plugin == "pr_curves":
        curve = tbplugins.pr_curve(tensor)
        if curve is None:
            points.skipped += 1
            return
        points.pr_curves.append((points.tag_id(tag), step, wall, curve[0], curve[1]))
        points.heavy_bytes += curve[1].nbytes
    elif plugin == "mesh":
        part = tbplugins.mesh_part(value, value.metadata.plugin_data.content if value.HasField("metadata") else b"")
        if part is None:
            points.skipped += 1
        else:
            state.mesh_parts.append(part)
    elif plugin == "custom_scalars":
        layout = tbplugins.layout_json(tensor)
        if layout is None:
            points.skipped += 1
        else:
            points.layout = layout
    elif plugin in ("scalars", "", "tensor"):
        values = tbplugins.tensor_values(tensor)
        if plugin != "tensor" and values is not None and values.size == 1 and values.dtype != np.bool_:
            if value.HasField("metadata"):
                _tag_info(points, state, tag, value.metadata)
            points.scalar_tag.append(points.tag_id(tag))
            points.scalar_step.append(step)
            points.scalar_wall.append(wall)
            points.scalar_value.append(float(values.reshape(-1)[0]))
            return
        raw = tbplugins.raw_tensor(tensor) if plugin != "scalars" else None
        if raw is None:
            points.skipped += 1
            return
        points.tensors.append((points.tag_id(tag), step, wall, raw))
        points.heavy_bytes += len(raw.data)
    else:
        points.skipped += 1


def _read_tensor_histogram(points: Points, tensor: Any, tag: str, step: int, wall: float) -> None:
    values = tbplugins.tensor_values(tensor)
    if values is None or values.size % 3 or values.size == 0:
        points.skipped += 1
        return
    buckets = values.reshape(-1, 3).astype(np.float64)
    left, right, counts = buckets[:, 0], buckets[:, 1], buckets[:, 2]
    edges: np.ndarray = np.concatenate((left[:1], right))
    if not (edges[1:] > edges[:-1]).all():  # one-value histograms: left == right
        if buckets.shape[0] != 1:
            points.skipped += 1
            return
        edges = np.array([left[0], np.nextafter(left[0], np.inf)])
    # TF2 histograms carry no sum: estimated from the bucket midpoints.
    middle = (left + right) / 2
    total, squares = float((counts * middle).sum()), float((counts * middle * middle).sum())
    _add_edges(points, tag, step, wall, edges, counts, float(edges[0]), float(edges[-1]), total, squares)


def _add_meshes(points: Points, state: FileState, step: int, wall: float) -> None:
    """The mesh parts of one event, by mesh name, as meshes (tensorboardX writes a mesh's parts together)."""
    by_name: dict[str, list[MeshPart]] = {}
    for part in state.mesh_parts:
        by_name.setdefault(part.name, []).append(part)
    state.mesh_parts.clear()
    for name, parts in by_name.items():
        meshes, unused = tbplugins.assemble_meshes(parts)
        points.skipped += unused
        tag_id = points.tag_id(name)
        for mesh in meshes:
            points.meshes.append((tag_id, step, wall, mesh))
            points.heavy_bytes += mesh.vertices.nbytes * 2


def _add_histogram(
    points: Points,
    tag: str,
    step: int,
    wall: float,
    minimum: float,
    maximum: float,
    total: float,
    sum_squares: float,
    limits: Any,
    counts: Any,
) -> None:
    limit_array = np.array(limits, np.float64)
    count_array = np.array(counts, np.float64)
    if limit_array.size == 0 or limit_array.size != count_array.size:
        points.skipped += 1
        return
    from runstream.tensorboard import tensorboard_buckets_to_edges

    edges, count_array = tensorboard_buckets_to_edges(minimum, limit_array, count_array)
    if not (edges[1:] > edges[:-1]).all():
        points.skipped += 1
        return
    _add_edges(points, tag, step, wall, edges, count_array, minimum, maximum, total, sum_squares)


def _add_edges(
    points: Points,
    tag: str,
    step: int,
    wall: float,
    edges: np.ndarray,
    counts: np.ndarray,
    minimum: float,
    maximum: float,
    total: float,
    sum_squares: float,
) -> None:
    points.histograms.append((points.tag_id(tag), step, wall, edges, counts, minimum, maximum, total, sum_squares))
    points.heavy_bytes += edges.size * 16


def _read_hparams(points: Points, content: bytes) -> None:
    data = tb.HParamsPluginData.FromString(content)
    if data.WhichOneof("data") != "session_start_info":
        return
    hparams: dict[str, Any] = {}
    for key, item in data.session_start_info.hparams.items():
        kind = item.WhichOneof("kind")
        hparams[key] = getattr(item, kind) if kind in ("number_value", "string_value", "bool_value") else None
    points.hparams = {**(points.hparams or {}), **hparams}


def read_run(name: str, directory: Path, files: list[Path], progress: Callable[[int], None] | None = None) -> RunData:
    """Read one run's event files (and projector folder) whole, into columns: for tests and benchmarks; the
    importer reads each file from where the server's progress says it stopped (tbfollow.py)."""
    run = RunData(name=name, directory=directory, files=files)
    for path in files:
        data = path.read_bytes()
        state = FileState()
        for points, _ in read_points(RecordScanner(data, str(path), run.problems), state):
            merge_points(run, points)
        if progress is not None:
            progress(len(data))
    run.embeddings = read_projector(directory, run.problems)
    for embedding in run.embeddings:
        run.tag_id(embedding.tag)
    return run


def merge_points(into: Points, points: Points) -> None:
    """Append `points` to `into` (their tag ids renumbered); hparams, tag info and layout: the later wins."""
    names = list(points.tags)
    remap = np.array([into.tag_id(name) for name in names] or [0], np.int64)
    points.compact()
    into.compact()
    into.scalar_parts += [(remap[part[0]], part[1], part[2], part[3]) for part in points.scalar_parts]
    for kind in ("histograms", "images", "texts", "graphs", "audio", "videos", "pr_curves", "meshes", "tensors"):
        items: list[Any] = getattr(points, kind)
        getattr(into, kind).extend((int(remap[item[0]]), *item[1:]) for item in items)
    into.tag_info.update(points.tag_info)
    into.layout = points.layout or into.layout
    if points.hparams is not None:
        into.hparams = {**(into.hparams or {}), **points.hparams}
    first, last = points.wall_range()
    into.first_wall = into.first_wall or points.first_wall or first
    into.last_wall = max(into.last_wall, last)
    into.records += points.records
    into.skipped += points.skipped
    into.problems += points.problems


def to_batch(points: Points, run_id: str, writer_id: str, seq: int, source_offset: int = 0) -> pb.Batch:
    """One wire batch of every point in `points` (the records of one range of a file, so that the batch's
    source_offset says what the server holds once it commits)."""
    message = pb.Batch(
        run_id=run_id,
        rank=0,
        writer_id=writer_id,
        seq=seq,
        tags=list(points.tags),
        source_offset=source_offset,
        custom_scalars_layout=points.layout,
    )
    points.compact()
    if points.scalar_parts:
        tags, steps, walls, values = (np.concatenate([part[i] for part in points.scalar_parts]) for i in range(4))
        message.scalars.CopyFrom(
            pb.Scalars(
                tag_index=tags.astype("<u4").tobytes(),
                step=steps.tobytes(),
                wall_time=walls.tobytes(),
                value=values.tobytes(),
            )
        )
    if points.histograms:
        group = points.histograms
        message.histograms.CopyFrom(
            pb.Histograms(
                **_common(group),
                bucket_count=np.array([h[4].size for h in group], "<u4").tobytes(),
                edges=np.concatenate([h[3] for h in group]).astype("<f8").tobytes(),
                counts=np.concatenate([h[4] for h in group]).astype("<f8").tobytes(),
                min=np.array([h[5] for h in group], "<f8").tobytes(),
                max=np.array([h[6] for h in group], "<f8").tobytes(),
                sum=np.array([h[7] for h in group], "<f8").tobytes(),
                sum_squares=np.array([h[8] for h in group], "<f8").tobytes(),
            )
        )
    if points.images:
        message.images.CopyFrom(pb.Images(**_common(points.images), data=[i[3] for i in points.images]))
    if points.texts:
        message.texts.CopyFrom(pb.Texts(**_common(points.texts), text=[t[3] for t in points.texts]))
    if points.graphs:
        message.graphs.CopyFrom(pb.Graphs(**_common(points.graphs), doc=[g[3] for g in points.graphs]))
    if points.audio:
        message.audio.CopyFrom(pb.Audio(**_common(points.audio), wav=[a[3] for a in points.audio]))
    if points.videos:
        videos = points.videos
        message.videos.CopyFrom(
            pb.Videos(
                **_common(videos), fps=np.array([v[3] for v in videos], "<f8").tobytes(), data=[v[4] for v in videos]
            )
        )
    if points.pr_curves:
        curves = points.pr_curves
        message.pr_curves.CopyFrom(
            pb.PrCurves(
                **_common(curves),
                thresholds=np.array([c[3] for c in curves], "<u4").tobytes(),
                values=np.concatenate([c[4] for c in curves]).astype("<f8").tobytes(),
            )
        )
    if points.meshes:
        message.meshes.CopyFrom(_meshes([m[3] for m in points.meshes], _common(points.meshes)))
    if points.tensors:
        raws = [t[3] for t in points.tensors]
        message.tensors.CopyFrom(
            pb.Tensors(
                **_common(points.tensors),
                dtype=[r.dtype for r in raws],
                ndim=np.array([len(r.shape) for r in raws], "<u4").tobytes(),
                shape=np.array([d for r in raws for d in r.shape], "<u8").tobytes(),
                data=[r.data for r in raws],
            )
        )
    for tag, (display_name, description) in points.tag_info.items():
        message.tag_info.add(tag=tag, display_name=display_name, description=description)
    return message


def _common(items: list[Any]) -> dict[str, Any]:
    return {
        "tag_index": np.array([item[0] for item in items], "<u4").tobytes(),
        "step": np.array([item[1] for item in items], "<i8").tobytes(),
        "wall_time": np.array([item[2] for item in items], "<f8").tobytes(),
    }


def _meshes(meshes: list[Mesh], common: dict[str, Any]) -> pb.Meshes:
    def counts(values: list[int]) -> bytes:
        return np.array(values, "<u4").tobytes()

    def joined(arrays: list[np.ndarray], dtype: str) -> bytes:
        return np.concatenate([a.reshape(-1) for a in arrays]).astype(dtype).tobytes() if arrays else b""

    return pb.Meshes(
        **common,
        sample=counts([m.sample for m in meshes]),
        vertex_count=counts([len(m.vertices) for m in meshes]),
        face_count=counts([0 if m.faces is None else len(m.faces) for m in meshes]),
        color_count=counts([0 if m.colors is None else len(m.colors) for m in meshes]),
        vertices=joined([m.vertices for m in meshes], "<f4"),
        colors=joined([m.colors for m in meshes if m.colors is not None], "u1"),
        faces=joined([m.faces for m in meshes if m.faces is not None], "<u4"),
        config=[m.config for m in meshes],
    )


def batches(run: RunData, run_id: str, writer_id: str) -> Iterator[pb.Batch]:
    """A run read whole (read_run) as wire batches: its event files' points in one batch, then its projector
    embeddings in chunks, one per batch (tbprojector.py)."""
    seq = 1
    yield to_batch(run, run_id, writer_id, seq)
    yield from embedding_batches(run.embeddings, run_id, writer_id, seq + 1)


def embedding_batches(
    embeddings: list[ProjectorEmbedding], run_id: str, writer_id: str, seq: int
) -> Iterator[pb.Batch]:
    """Projector embeddings as chunks of rows, one per batch, numbered from `seq`."""
    for embedding in embeddings:
        for chunk in embedding_chunks(embedding):
            chunk.tag_index = np.zeros(1, "<u4").tobytes()
            message = pb.Batch(run_id=run_id, rank=0, writer_id=writer_id, seq=seq, tags=[embedding.tag])
            message.embeddings.CopyFrom(chunk)
            seq += 1
            yield message


def run_id_for(project: str, run: RunData) -> str:
    """Deterministic: the same project, run name and first event file give the same run id."""
    return run_id_from(project, run.name, run.files[0])


def run_id_from(project: str, name: str, first_file: Path) -> str:
    key = "\0".join([project, name, first_file.name])
    return "tb-" + hashlib.sha256(key.encode()).hexdigest()[:29]


def file_writer_id(run_id: str, path: Path) -> str:
    """The writer of one event file: the same for the same run and file name, however much the file grew."""
    return f"{run_id}-f-{hashlib.sha256(path.name.encode()).hexdigest()[:20]}"


def graph_document_from_def(data: bytes) -> dict[str, Any]:
    """A GraphDef (Event.graph_def) as runstream's graph document: a node's scope is its name up to the
    last '/', its output shape the first of `_output_shapes`, its other attributes as written; an edge per
    input that names a node of the graph. Parameter counts are not in a GraphDef: 0."""
    graph = tb.GraphDef.FromString(data)
    index = {node.name: i for i, node in enumerate(graph.node)}
    nodes, edges = [], []
    for i, node in enumerate(graph.node):
        shapes = node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else []
        nodes.append(
            {
                "name": node.name,
                "scope": node.name.rsplit("/", 1)[0] if "/" in node.name else "",
                "op": node.op,
                "output_shape": [int(d.size) for d in shapes[0].dim] if shapes else None,
                "attributes": {k: _attr_value(v) for k, v in sorted(node.attr.items()) if k != "_output_shapes"},
                "parameters": 0,
            }
        )
        sources = dict.fromkeys(name.lstrip("^").split(":")[0] for name in node.input)
        edges += [[index[source], i] for source in sources if source in index]
    return {"nodes": nodes, "edges": edges, "parameters": 0}


def _attr_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "s":
        return value.s.decode("utf-8", "replace")
    if kind == "shape":
        return [int(d.size) for d in value.shape.dim]
    if kind == "list":
        items = value.list
        if items.shape:
            return [[int(d.size) for d in shape.dim] for shape in items.shape]
        return [s.decode("utf-8", "replace") for s in items.s] or list(items.i) or list(items.f) or list(items.b)
    if kind in ("i", "f", "b"):
        number = getattr(value, kind)
        return number if not isinstance(number, float) or math.isfinite(number) else str(number)
    return None


def import_tensorboard(
    logdir: Path,
    project: str,
    server: str,
    token: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> list[ImportedRun]:
    """Import every run under `logdir` into the server at `server` (once; see tbfollow.py for --follow)."""
    from runstream_service.tbfollow import import_once

    return import_once(logdir, project, server, token, progress, log)


@contextlib.contextmanager
def local_server(data_dir: Path, timeout: float = 60.0) -> Iterator[str]:
    """`runstream serve --data DIR` on free loopback ports for the duration; yields its gRPC address.

    Stopped with SIGTERM (it drains and checkpoints). Fails if another process holds the database.
    """
    from runstream_service.launcher import LocalServer, ServerStartError

    server = LocalServer(data_dir, own_session=True)
    try:
        try:
            server.start(timeout)
        except ServerStartError as exc:
            raise RuntimeError(f"could not start a local server on {data_dir}: {exc}") from None
        yield server.address
    finally:
        try:
            server.stop()
        finally:
            server.close()


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC32C of the length, data, masked CRC32C of the data."""
    header = _U64.pack(len(data))
    return header + _U32.pack(masked_crc32c(header)) + data + _U32.pack(masked_crc32c(data))


def write_scalar_events(path: Path, count: int, tags: int = 10, start_wall: float = 1.7e9) -> None:
    """An event file of `count` simple_value scalars over `tags` tags (for benchmarks and tests)."""
    with open(path, "wb") as out:
        out.write(frame_record(tb.Event(wall_time=start_wall, file_version="brain.Event:2").SerializeToString()))
        records = []
        for i in range(count):
            event = tb.Event(wall_time=start_wall + i * 1e-3, step=i // tags)
            event.summary.value.add(tag=f"loss/{i % tags}", simple_value=float(i) * 0.5)
            records.append(frame_record(event.SerializeToString()))
            if len(records) >= 100_000:
                out.write(b"".join(records))
                records = []
        out.write(b"".join(records))
