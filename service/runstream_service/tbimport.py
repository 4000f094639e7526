"""`runstream import-tensorboard LOGDIR`: TensorBoard event files (tfevents) into runstream runs.

A run per directory that holds event files, as TensorBoard sees them; the run's name is the
directory relative to LOGDIR. Records are read with their framing checked (length, masked CRC32C
of the length, data, masked CRC32C of the data); a truncated last record (a job killed mid-write)
or a corrupt record is reported, not fatal. Events are parsed with runstream's own minimal
definition of the format (proto/runstream/tbcompat/event.proto), many records per parser call.

Importing twice does not duplicate: the run id is derived from the project, the run's name and its
first event file, the writer id from the run id, and batches are cut in a fixed order, so the
server's (writer_id, seq) check acknowledges a replay without writing it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runstream._transport import Transport, connect
from runstream.tbcompat import event_pb2 as tb
from runstream.v1 import ingest_pb2 as pb
from runstream_service.tbprojector import ProjectorEmbedding, embedding_chunks, read_projector

try:
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - the [server] extra installs google-crc32c
    _crc32c = None

_MASK_DELTA = 0xA282EAD8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
CHUNK_RECORDS = 20_000  # records parsed per protobuf call
SCALARS_PER_BATCH = 200_000
HISTOGRAM_VALUES_PER_BATCH = 2_000_000
IMAGE_BYTES_PER_BATCH = 32 << 20
TEXTS_PER_BATCH = 5_000
COMPACT_EVERY = 1_000_000  # scalars kept in Python lists before they move into NumPy columns

# TensorFlow's DataType codes (those a scalar or text may have).
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_, 19: np.float16}
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
class RunData:
    """Everything read from one directory's event files, as columns."""

    name: str
    directory: Path
    files: list[Path]
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
    embeddings: list[ProjectorEmbedding] = field(default_factory=list)  # the projector folder's (tbprojector.py)
    hparams: dict[str, Any] | None = None
    first_wall: float = 0.0
    last_wall: float = 0.0
    records: int = 0
    skipped: int = 0  # values runstream cannot store (negative steps, unknown plugins, ...)
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
        return self.scalar_count + others + sum(e.rows for e in self.embeddings)

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
                column.clear()  # in place: read_run holds these lists


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


def read_records(data: bytes, name: str, problems: list[str]) -> Iterator[bytes]:
    """The framed records of an event file's bytes, as chunks of concatenated EventList fields."""
    offset, size = 0, len(data)
    pieces: list[bytes] = []
    unpack_u64, unpack_u32, masked = _U64.unpack_from, _U32.unpack_from, masked_crc32c
    while offset < size:
        if offset + 12 > size:
            problems.append(f"{name}: truncated record at byte {offset} (the file ends in its header); ignored")
            break
        (length,) = unpack_u64(data, offset)
        if masked(data[offset : offset + 8]) != unpack_u32(data, offset + 8)[0]:
            problems.append(f"{name}: corrupt record length at byte {offset} (CRC mismatch); the rest is unreadable")
            break
        start = offset + 12
        end = start + length
        if end + 4 > size:
            problems.append(f"{name}: truncated last record at byte {offset} ({length} bytes announced); ignored")
            break
        payload = data[start:end]
        offset = end + 4
        if masked(payload) != unpack_u32(data, end)[0]:
            problems.append(f"{name}: corrupt record at byte {start - 12} (data CRC mismatch); skipped")
            continue
        pieces.append(_field1_header(length))
        pieces.append(payload)
        if len(pieces) >= 2 * CHUNK_RECORDS:
            yield b"".join(pieces)
            pieces = []
    if pieces:
        yield b"".join(pieces)


def _tensor_values(tensor: Any) -> np.ndarray | None:
    if tensor.float_val:
        return np.array(tensor.float_val, np.float32)
    if tensor.double_val:
        return np.array(tensor.double_val, np.float64)
    if tensor.int_val:
        return np.array(tensor.int_val, np.int64)
    if tensor.int64_val:
        return np.array(tensor.int64_val, np.int64)
    if tensor.half_val:
        return np.array(tensor.half_val, np.uint16).view(np.float16)
    if tensor.bool_val:
        return np.array(tensor.bool_val, np.bool_)
    if tensor.tensor_content:
        dtype = _DTYPES.get(tensor.dtype)
        if dtype is None:
            return None
        return np.frombuffer(tensor.tensor_content, dtype=dtype)
    return None


def read_run(name: str, directory: Path, files: list[Path], progress: Callable[[int], None] | None = None) -> RunData:
    """Read one run's event files into columns."""
    run = RunData(name=name, directory=directory, files=files)
    plugins: dict[str, str] = {}  # tag -> plugin name (TF2 writers send the metadata only once per tag)
    s_tag, s_step, s_wall, s_value = run.scalar_tag, run.scalar_step, run.scalar_wall, run.scalar_value
    tag_ids = run.tags
    for path in files:
        data = path.read_bytes()
        for chunk in read_records(data, str(path), run.problems):
            events = tb.EventList.FromString(chunk).event
            run.records += len(events)
            for event in events:
                if event.HasField("graph_def"):  # add_graph: tag graph, the run's graphs numbered 0, 1, ...
                    doc = json.dumps(graph_document_from_def(event.graph_def), separators=(",", ":"))
                    run.graphs.append((run.tag_id("graph"), len(run.graphs), event.wall_time, doc))
                if not event.HasField("summary"):
                    if not run.first_wall:
                        run.first_wall = event.wall_time
                    continue
                step = event.step
                wall = event.wall_time
                if step < 0:
                    run.skipped += len(event.summary.value)
                    continue
                for value in event.summary.value:
                    kind = value.WhichOneof("value")
                    tag = value.tag
                    if kind == "simple_value":
                        tag_id = tag_ids.get(tag)
                        if tag_id is None:
                            tag_id = run.tag_id(tag)
                        s_tag.append(tag_id)
                        s_step.append(step)
                        s_wall.append(wall)
                        s_value.append(value.simple_value)
                    else:
                        _read_other(run, plugins, value, kind, tag, step, wall)
            if not run.first_wall and s_wall:
                run.first_wall = s_wall[0]
            if len(s_step) >= COMPACT_EVERY:
                run.compact()
        if progress is not None:
            progress(len(data))
    run.compact()
    run.embeddings = read_projector(directory, run.problems)
    for embedding in run.embeddings:
        run.tag_id(embedding.tag)
    walls = [float(part[2].max()) for part in run.scalar_parts if len(part[2])]
    walls += [item[2] for items in (run.histograms, run.images, run.texts, run.graphs) for item in items[-1:]]
    run.last_wall = max(walls) if walls else run.first_wall
    return run


def _read_other(
    run: RunData, plugins: dict[str, str], value: Any, kind: str | None, tag: str, step: int, wall: float
) -> None:
    if value.HasField("metadata") and value.metadata.HasField("plugin_data"):
        plugins[tag] = value.metadata.plugin_data.plugin_name
    plugin = plugins.get(tag, "")
    if plugin == "hparams":  # the data is in the metadata; the value itself is empty or a dummy tensor
        if value.HasField("metadata"):
            _read_hparams(run, value.metadata.plugin_data.content)
    elif kind == "histo":
        h = value.histo
        _add_histogram(run, tag, step, wall, h.min, h.max, h.sum, h.sum_squares, h.bucket_limit, h.bucket)
    elif kind == "image":
        run.images.append((run.tag_id(tag), step, wall, value.image.encoded_image_string))
    elif kind == "tensor":
        tensor = value.tensor
        if plugin == "text":
            texts = [s.decode("utf-8", "replace") for s in tensor.string_val]
            if texts:  # tensorboardX and torch add "/text_summary" to the tag the user gave
                text_tag = tag.removesuffix("/text_summary") or tag
                run.texts.append((run.tag_id(text_tag), step, wall, "\n".join(texts)))
        elif plugin == "images" and len(tensor.string_val) > 2:
            for i, blob in enumerate(tensor.string_val[2:]):
                image_tag = tag if len(tensor.string_val) == 3 else f"{tag}/image/{i}"
                run.images.append((run.tag_id(image_tag), step, wall, blob))
        elif plugin == "histograms":
            values = _tensor_values(tensor)
            if values is None or values.size % 3 or values.size == 0:
                run.skipped += 1
                return
            buckets = values.reshape(-1, 3).astype(np.float64)
            left, right, counts = buckets[:, 0], buckets[:, 1], buckets[:, 2]
            edges: np.ndarray = np.concatenate((left[:1], right))
            if not (edges[1:] > edges[:-1]).all():  # one-value histograms: left == right
                if buckets.shape[0] != 1:
                    run.skipped += 1
                    return
                edges = np.array([left[0], np.nextafter(left[0], np.inf)])
            # TF2 histograms carry no sum: estimated from the bucket midpoints.
            middle = (left + right) / 2
            total, squares = float((counts * middle).sum()), float((counts * middle * middle).sum())
            _add_edges(run, tag, step, wall, edges, counts, float(edges[0]), float(edges[-1]), total, squares)
        elif plugin in ("scalars", ""):
            values = _tensor_values(tensor)
            if values is None or values.size != 1 or values.dtype == np.bool_:
                run.skipped += 1
                return
            run.scalar_tag.append(run.tag_id(tag))
            run.scalar_step.append(step)
            run.scalar_wall.append(wall)
            run.scalar_value.append(float(values.reshape(-1)[0]))
        else:
            run.skipped += 1
    else:
        run.skipped += 1
    del kind


def _add_histogram(
    run: RunData,
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
        run.skipped += 1
        return
    from runstream.tensorboard import tensorboard_buckets_to_edges

    edges, count_array = tensorboard_buckets_to_edges(minimum, limit_array, count_array)
    if not (edges[1:] > edges[:-1]).all():
        run.skipped += 1
        return
    _add_edges(run, tag, step, wall, edges, count_array, minimum, maximum, total, sum_squares)


def _add_edges(
    run: RunData,
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
    run.histograms.append((run.tag_id(tag), step, wall, edges, counts, minimum, maximum, total, sum_squares))


def _read_hparams(run: RunData, content: bytes) -> None:
    data = tb.HParamsPluginData.FromString(content)
    if data.WhichOneof("data") != "session_start_info":
        return
    hparams: dict[str, Any] = {}
    for key, item in data.session_start_info.hparams.items():
        kind = item.WhichOneof("kind")
        hparams[key] = getattr(item, kind) if kind in ("number_value", "string_value", "bool_value") else None
    run.hparams = {**(run.hparams or {}), **hparams}


# -- sending ----------------------------------------------------------------------


def run_id_for(project: str, run: RunData) -> str:
    """Deterministic: the same project, run name and first event file give the same run id."""
    key = "\0".join([project, run.name, run.files[0].name])
    return "tb-" + hashlib.sha256(key.encode()).hexdigest()[:29]


def writer_id_for(run_id: str, run: RunData) -> str:
    """Deterministic for the same files: their names and sizes. Files that grew since an earlier
    import make a new writer, so nothing is lost (their earlier points are then stored twice)."""
    fingerprint = "\0".join(f"{p.name}:{p.stat().st_size}" for p in run.files)
    return f"{run_id}-import-{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}"


def batches(run: RunData, run_id: str, writer_id: str) -> Iterator[pb.Batch]:
    """The run's points as wire batches, cut in a fixed order (so a re-import replays the same seqs)."""
    tag_names = list(run.tags)
    seq = 0

    def batch(used_tags: np.ndarray) -> tuple[pb.Batch, np.ndarray]:
        nonlocal seq
        seq += 1
        unique, local = np.unique(used_tags, return_inverse=True)
        message = pb.Batch(run_id=run_id, rank=0, writer_id=writer_id, seq=seq, tags=[tag_names[i] for i in unique])
        return message, local.astype("<u4")

    run.compact()
    if run.scalar_parts:
        tags, steps, walls, values = (np.concatenate([part[i] for part in run.scalar_parts]) for i in range(4))
        for start in range(0, len(steps), SCALARS_PER_BATCH):
            part = slice(start, start + SCALARS_PER_BATCH)
            message, local = batch(tags[part])
            message.scalars.CopyFrom(
                pb.Scalars(
                    tag_index=local.tobytes(),
                    step=steps[part].tobytes(),
                    wall_time=walls[part].tobytes(),
                    value=values[part].tobytes(),
                )
            )
            yield message
    for group in _cut(run.histograms, lambda h: h[3].size * 2, HISTOGRAM_VALUES_PER_BATCH, 10_000):
        message, local = batch(np.array([h[0] for h in group], np.int64))
        message.histograms.CopyFrom(
            pb.Histograms(
                tag_index=local.tobytes(),
                step=np.array([h[1] for h in group], "<i8").tobytes(),
                wall_time=np.array([h[2] for h in group], "<f8").tobytes(),
                bucket_count=np.array([h[4].size for h in group], "<u4").tobytes(),
                edges=np.concatenate([h[3] for h in group]).astype("<f8").tobytes(),
                counts=np.concatenate([h[4] for h in group]).astype("<f8").tobytes(),
                min=np.array([h[5] for h in group], "<f8").tobytes(),
                max=np.array([h[6] for h in group], "<f8").tobytes(),
                sum=np.array([h[7] for h in group], "<f8").tobytes(),
                sum_squares=np.array([h[8] for h in group], "<f8").tobytes(),
            )
        )
        yield message
    for images in _cut(run.images, lambda i: len(i[3]), IMAGE_BYTES_PER_BATCH, 1_000):
        message, local = batch(np.array([i[0] for i in images], np.int64))
        message.images.CopyFrom(
            pb.Images(
                tag_index=local.tobytes(),
                step=np.array([i[1] for i in images], "<i8").tobytes(),
                wall_time=np.array([i[2] for i in images], "<f8").tobytes(),
                data=[i[3] for i in images],
            )
        )
        yield message
    for texts in _cut(run.texts, lambda t: len(t[3]) * 4, 16 << 20, TEXTS_PER_BATCH):
        message, local = batch(np.array([t[0] for t in texts], np.int64))
        message.texts.CopyFrom(
            pb.Texts(
                tag_index=local.tobytes(),
                step=np.array([t[1] for t in texts], "<i8").tobytes(),
                wall_time=np.array([t[2] for t in texts], "<f8").tobytes(),
                text=[t[3] for t in texts],
            )
        )
        yield message

    for graph in run.graphs:  # one per batch: a document may be tens of MB
        message, local = batch(np.array([graph[0]], np.int64))
        message.graphs.CopyFrom(
            pb.Graphs(
                tag_index=local.tobytes(),
                step=np.array([graph[1]], "<i8").tobytes(),
                wall_time=np.array([graph[2]], "<f8").tobytes(),
                doc=[graph[3]],
            )
        )
        yield message
    # Last, so that the batches of an import made before projector folders were read keep their seqs.
    for embedding in run.embeddings:  # chunks of rows, one per batch (tbprojector.py)
        for chunk in embedding_chunks(embedding):
            message, local = batch(np.array([run.tags[embedding.tag]], np.int64))
            chunk.tag_index = local.tobytes()
            message.embeddings.CopyFrom(chunk)
            yield message


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


def _cut(items: list[Any], size: Callable[[Any], int], max_size: int, max_count: int) -> Iterator[list[Any]]:
    group: list[Any] = []
    total = 0
    for item in items:
        item_size = size(item)
        if group and (total + item_size > max_size or len(group) >= max_count):
            yield group
            group, total = [], 0
        group.append(item)
        total += item_size
    if group:
        yield group


@dataclass
class ImportedRun:
    run_id: str
    name: str
    points: int
    written_batches: int
    duplicate_batches: int
    problems: list[str]
    skipped: int


def send_run(transport: Transport, project: str, run: RunData) -> ImportedRun:
    """Open (or rejoin) the run on the server, stream its batches, wait for every ack, finish it."""
    run_id = run_id_for(project, run)
    config: dict[str, Any] = {"imported_from": str(run.directory.resolve())}
    if run.hparams is not None:
        config["hparams"] = run.hparams
    opened = transport.open_run(
        pb.OpenRunRequest(
            project=project,
            name=run.name,
            config_json=json.dumps(config),
            run_id=run_id,
            rank=0,
            world_size=1,
            host=socket.gethostname(),
            start_time=run.first_wall or time.time(),
        ),
        timeout=30,
        wait_for_ready=True,
    )
    written = duplicates = 0
    for ack in transport.write(batches(run, run_id, writer_id_for(run_id, run))):
        if ack.duplicate:
            duplicates += 1
        else:
            written += 1
    transport.finish_run(
        pb.FinishRunRequest(run_id=run_id, rank=0, status="finished", end_time=run.last_wall or time.time()),
        timeout=30,
    )
    if written and not opened.created:
        run.problems.append(
            f"run {run_id} was imported before from event files that have changed since (a run still "
            "writing?); its points were imported again, so the earlier ones are now stored twice"
        )
    return ImportedRun(run_id, run.name, run.points, written, duplicates, run.problems, run.skipped)


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.started = time.monotonic()

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.enabled:
            fraction = min(self.done / self.total, 1.0)
            bar = "#" * int(fraction * 30)
            mib = self.done / (1 << 20)
            sys.stderr.write(
                f"\rimporting [{bar:<30}] {fraction:6.1%} {mib:8.1f} MiB {time.monotonic() - self.started:6.1f}s"
            )
            sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def import_tensorboard(
    logdir: Path,
    project: str,
    server: str,
    token: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> list[ImportedRun]:
    """Import every run under `logdir` into the server at `server`; returns what each run got."""
    if not logdir.is_dir():
        raise FileNotFoundError(f"{logdir} is not a directory")
    runs = find_runs(logdir)
    if not runs:
        log(f"runstream import-tensorboard: no event files (*tfevents*) under {logdir}")
        return []
    total = sum(p.stat().st_size for _, _, files in runs for p in files)
    bar = Progress(total, sys.stderr.isatty() if progress is None else progress)
    # The SDK's transport: RUNSTREAM_TOKEN and RUNSTREAM_TLS_CA apply as for runstream.init().
    transport = connect(server, token)
    results = []
    try:
        for name, directory, files in runs:
            data = read_run(name, directory, files, bar.advance)
            results.append(send_run(transport, project, data))
    finally:
        bar.end()
        transport.close()
    for result in results:
        state = "already imported" if result.written_batches == 0 and result.duplicate_batches else "imported"
        log(
            f"{result.name}: {state} as run {result.run_id}: {result.points} points"
            + (f", {result.skipped} values of kinds runstream does not store skipped" if result.skipped else "")
        )
        for problem in result.problems:
            log(f"  warning: {problem}")
    return results


@contextlib.contextmanager
def local_server(data_dir: Path, timeout: float = 60.0) -> Iterator[str]:
    """`runstream serve --data DIR` on free loopback ports for the duration; yields its gRPC address.

    Stopped with SIGTERM (it drains and checkpoints). Fails if another process holds the database.
    """
    from runstream_service.launcher import LocalServer, ServerStartError

    server = LocalServer(data_dir)
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
