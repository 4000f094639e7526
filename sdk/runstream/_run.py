"""`runstream.init()` and `Run`: the part of the SDK a training loop touches.

`Run.log` is the hot path. It checks its input, then appends one tuple to a
deque; encoding, PNG compression, histogram binning and the network all happen
on the sender thread (_sender.py).
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import socket
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import numpy as np

from runstream import _inputs
from runstream._encode import (
    AudioClip,
    BinnedHistogram,
    EmbeddingJob,
    Mesh,
    RawHistogram,
    VideoClip,
    VisdomCallSource,
    embedding_chunk_rows,
)
from runstream._errors import AuthError, ForkedProcessError, RunFinishedError, ServerUnavailableError
from runstream._prcurve import check_raw_curve, compute_curve
from runstream._sender import Buffers, Sender, SenderLimits, SendReport
from runstream._settings import SdkConfig, resolve
from runstream._spool import Spool, spool_path
from runstream._sync import sync_in_background
from runstream._transport import Transport, TransportError, for_settings
from runstream.v1 import ingest_pb2 as pb

logger = logging.getLogger("runstream")

_now = time.time
_pack_one = struct.Struct("<d").pack
_MAX_GRAPH_BYTES = 48 << 20  # a graph travels in one batch, and a batch has at most 64 MiB


@functools.cache
def _packer(width: int) -> Callable[..., bytes]:
    return struct.Struct(f"<{width}d").pack


_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()

# An embedding up to this size (float32 values and raw image pixels) is copied at the call; a bigger
# one is streamed from the caller's array during the call (Run.log_embedding).
EMBEDDING_COPY_BYTES = 64 << 20


def _metadata_row_bytes(columns: tuple[str, ...], values: list[list[Any]]) -> int:
    """A bound on one row's metadata JSON, for the chunk size: names, and each column's longest value."""
    size = 2
    for name, column in zip(columns, values):
        longest = max((len(v) for v in column if type(v) is str), default=24)
        size += len(name) + 4 + 4 * max(longest, 24)
    return size


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    server: str | None = None,
    token: str | None = None,
    tls_ca: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    connect_timeout: float = 10.0,
    max_buffered_points: int = 2_000_000,
    max_buffered_bytes: int = 256 << 20,
    mode: str | None = None,
    dir: str | None = None,
    spool_max_bytes: int | None = None,
    spool_policy: str | None = None,
    require_server: bool = False,
) -> Run:
    """Start a run, or join it as one rank of a distributed job, and return it.

    Arguments win over the environment (RUNSTREAM_SERVER, RUNSTREAM_TOKEN, RUNSTREAM_TLS_CA,
    RUNSTREAM_PROJECT, RUNSTREAM_RUN_ID or TORCHELASTIC_RUN_ID, RANK, WORLD_SIZE).
    Raises AuthError if the server refuses the token. If the server does not answer within
    `connect_timeout` s, the run goes on with a warning: batches go to the spool under `dir`
    (RUNSTREAM_DIR) and the run is opened on the server once it answers; with
    `require_server=True`, ServerUnavailableError is raised instead. `mode="offline"`
    (RUNSTREAM_MODE=offline) never contacts a server: everything goes to the spool, for
    `runstream sync DIR` to upload later.
    """
    settings = resolve(
        {
            "project": project,
            "server": server,
            "token": token,
            "tls_ca": tls_ca,
            "run_id": run_id,
            "rank": rank,
            "world_size": world_size,
            "mode": mode,
            "dir": dir,
            "spool_max_bytes": spool_max_bytes,
            "spool_policy": spool_policy,
        }
    )
    config_json = json.dumps(dict(config or {}), default=str, allow_nan=True)
    return Run._open(
        settings, name, config_json, connect_timeout, max_buffered_points, max_buffered_bytes, require_server
    )


class Run:
    """One rank's handle on a run. Create it with `runstream.init()`."""

    def __init__(self) -> None:  # pragma: no cover - guard against direct construction
        raise TypeError("create a Run with runstream.init(...)")

    @classmethod
    def _open(
        cls,
        settings: SdkConfig,
        name: str | None,
        config_json: str,
        connect_timeout: float,
        max_buffered_points: int,
        max_buffered_bytes: int,
        require_server: bool = False,
        *,
        transport: Transport | None = None,
    ) -> Run:
        """`transport` is for tests (a fake server); by default, gRPC to `settings.server`."""
        run = cls.__new__(cls)
        run._settings = settings
        run._transport = transport if transport is not None else for_settings(settings)
        request = pb.OpenRunRequest(
            project=settings.project,
            name=name or "",
            config_json=config_json,
            run_id=settings.run_id or uuid.uuid4().hex[:16],  # made here, so a spool can name it before OpenRun
            rank=settings.rank,
            world_size=settings.world_size,
            host=socket.gethostname(),
            start_time=time.time(),
        )
        offline = settings.mode == "offline"
        opened = False  # else the server was unreachable: the sender opens the run when it answers
        if not offline:
            try:
                reply = run._transport.open_run(request, timeout=connect_timeout, wait_for_ready=True)
            except TransportError as exc:
                if require_server or not exc.unreachable:
                    run._transport.close()
                    raise _open_error(settings.server, exc, connect_timeout, settings.project) from None
                logger.warning(
                    "runstream: cannot reach the server at %s within %.0fs; run %s goes on, spooled to %s, and is "
                    "sent when the server answers (init(require_server=True) raises instead)",
                    settings.server,
                    connect_timeout,
                    request.run_id,
                    spool_path(settings.dir, request.run_id, "<writer>"),
                )
            else:
                request.run_id = reply.run_id
                opened = True
        run.id = request.run_id
        run.rank = settings.rank
        run._open_request = request
        run._buffers = Buffers()
        run._scalars = run._buffers.scalars
        run._max_points = max_buffered_points
        run._max_bytes = max_buffered_bytes
        run._next_step = 0
        run._last_step = 0
        run._known_tags = set()
        run._graph_steps = {}
        run._keys = ()
        run._pack = _packer(0)
        run._finished = False
        run._forked = False
        run._waiting_warned = False
        run._lock = threading.Lock()
        writer_id = uuid.uuid4().hex
        header = {
            "version": 1,
            "project": request.project,
            "name": request.name,
            "config_json": request.config_json,
            "run_id": request.run_id,
            "rank": request.rank,
            "world_size": request.world_size,
            "host": request.host,
            "start_time": request.start_time,
            "writer_id": writer_id,
            "server": settings.server,
        }
        budget, policy = int(settings.spool_max_bytes), settings.spool_policy

        def make_spool() -> Spool:
            return Spool.create(spool_path(settings.dir, run.id, writer_id), header, budget, policy)

        # A reachable but slower server spills to disk only once half the memory budget is waiting:
        # spilling costs CPU (measured ~10% of end-to-end throughput in bench/ingest.py at a quarter).
        limits = SenderLimits(
            spill_points=max(max_buffered_points // 2, 1), spill_bytes=max(max_buffered_bytes // 2, 1)
        )
        if offline:  # made now, so a directory that cannot be written fails init() and not later
            run._sender = Sender(
                run._transport, run.id, settings.rank, writer_id, run._buffers, limits,
                spool=make_spool(), offline=True,
            )  # fmt: skip
        else:
            run._sender = Sender(
                run._transport, run.id, settings.rank, writer_id, run._buffers, limits,
                spool_factory=make_spool, open_request=request, opened=opened,
            )  # fmt: skip
        run._sender.start()
        if opened:  # the server answers: send what earlier (killed) runs left
            sync_in_background(settings.dir, settings.server, settings.token)
        _live_runs.add(run)
        return run

    # Attributes set by _open (declared for type checkers).
    id: str
    rank: int
    _settings: SdkConfig
    _transport: Transport
    _open_request: pb.OpenRunRequest  # sent again to another server when a finish fails over
    _buffers: Buffers
    _scalars: Any  # the deque of _buffers, bound here to save a lookup per call
    _sender: Sender
    _max_points: int
    _max_bytes: int
    _next_step: int
    _last_step: int
    _known_tags: set[str]
    _graph_steps: dict[str, int]  # the next step of each graph tag: a run's first graph is step 0
    _keys: tuple[str, ...]
    _pack: Callable[..., bytes]  # packs one value per tag of _keys as little-endian float64
    _finished: bool
    _forked: bool
    _waiting_warned: bool
    _lock: threading.Lock

    # -- logging (the training thread) -------------------------------------

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log scalar values, one per tag. `step` defaults to the previous step + 1."""
        if step is None:
            step = self._next_step
        elif type(step) is not int or step < 0:
            step = _inputs.check_step(step)
        keys = tuple(data)
        if keys == self._keys:  # usually the same tags as last call: an identity check per tag
            keys = self._keys  # one shared tuple: less memory, and the sender groups calls by identity
        else:
            keys = self._learn_tags(keys)
        try:  # packed here: the type check and the conversion in one C call
            values = self._pack(*data.values())
        except (struct.error, TypeError, OverflowError):  # not all floats: convert each, or say which is wrong
            values = _packer(len(keys))(*[_inputs.to_float(k, v) for k, v in zip(keys, data.values())])
        self._next_step = step + 1
        self._last_step = step
        scalars = self._scalars
        scalars.append((step, _now(), keys, values))
        waiting = len(scalars)
        if waiting >= 2048 and not waiting & 255:  # not every call: waking the sender costs as much as a call
            self._sender.wake()
            if waiting * len(keys) >= self._max_points:
                self._wait_for_room()

    def log_histogram(
        self,
        tag: str,
        values: Any,
        step: int | None = None,
        bins: int | str | Any = 64,
        *,
        wall_time: float | None = None,
    ) -> None:
        """Log a histogram of raw `values` (binned on the sender thread) or of `(counts, edges)`.

        Non-finite values are left out of the buckets. `step` defaults to the last step logged.
        """
        if tag not in self._known_tags:
            self._learn_tag(tag)
        if step is None:
            step = self._last_step
        elif type(step) is not int or step < 0:
            step = _inputs.check_step(step)
        histogram: RawHistogram | BinnedHistogram
        if type(values) is tuple and len(values) == 2:
            counts, edges = _inputs.check_counts_edges(*values)
            histogram = BinnedHistogram(counts, edges)
            size = counts.nbytes + edges.nbytes
        else:
            array = _inputs.to_numpy(values)
            if array.size == 0:
                raise ValueError(f"histogram {tag!r} has no values")
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                raise TypeError(f"histogram {tag!r} needs numbers, got dtype {array.dtype}")
            if type(bins) is not int or not 1 <= bins <= 10_000:
                bins = _inputs.check_bins(bins)
            histogram = RawHistogram(array, bins)
            size = array.nbytes
        wall = time.time() if wall_time is None else float(wall_time)
        self._append_sized(self._buffers.histograms, ((tag, step, wall, histogram), size), size)

    def log_image(
        self,
        tag: str,
        image: Any,
        step: int | None = None,
        *,
        wall_time: float | None = None,
        boxes: Any = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """Log an image: HW, HWC or CHW array or tensor (uint8, or float in [0, 1]) or a PIL image.

        `boxes`: N x 4 (x_min, y_min, x_max, y_max) in pixels of the image, kept with it and drawn over it
        by the web UI, with `labels` (one str per box) if given."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        array = _inputs.check_image(image)
        if boxes is None and labels is not None:
            raise ValueError(f"image {tag!r} has labels but no boxes; labels name the boxes, one per box")
        drawn = "" if boxes is None else _inputs.check_boxes(tag, boxes, labels, array.shape[0], array.shape[1])
        wall = time.time() if wall_time is None else float(wall_time)
        self._append_sized(self._buffers.images, ((tag, step, wall, array, drawn), array.nbytes), array.nbytes)

    def log_text(self, tag: str, text: str, step: int | None = None, *, wall_time: float | None = None) -> None:
        """Log a text (shown as Markdown, as TensorBoard shows it); at most 1 MiB of UTF-8, no NUL."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        if not isinstance(text, str):
            raise TypeError(f"text of {tag!r} must be a str, not {type(text).__name__}")
        size = len(text.encode("utf-8"))
        if size > 1 << 20:
            raise ValueError(f"text of {tag!r} is {size} bytes of UTF-8; the limit is 1 MiB")
        if "\x00" in text:
            raise ValueError(f"text of {tag!r} contains a NUL character")
        wall = time.time() if wall_time is None else float(wall_time)
        self._append_sized(self._buffers.texts, ((tag, step, wall, text), size), size)

    def log_audio(
        self, tag: str, samples: Any, sample_rate: float, step: int | None = None, *, wall_time: float | None = None
    ) -> None:
        """Log an audio clip: `samples` is frames (1-D, mono) or frames x channels, amplitudes in [-1, 1]
        (louder is clipped); `sample_rate` in Hz. Stored as a 16-bit WAV (encoded on the sender thread)."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        array, rate = _inputs.check_audio(tag, samples, sample_rate)
        self._append_media("audio", tag, step, wall_time, AudioClip(array, rate), array.nbytes)

    def log_video(
        self, tag: str, frames: Any, fps: float = 4, step: int | None = None, *, wall_time: float | None = None
    ) -> None:
        """Log a video: `frames` is T x H x W x C (C in 1, 3, 4) or T x H x W, uint8 or float in [0, 1].
        Stored as an animated PNG (lossless; browsers play it in an <img>), encoded on the sender thread."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        array, rate = _inputs.check_video(tag, frames, fps)
        self._append_media("videos", tag, step, wall_time, VideoClip(array, rate), array.nbytes)

    def log_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        num_thresholds: int = 127,
        weights: Any = None,
        step: int | None = None,
        *,
        wall_time: float | None = None,
    ) -> None:
        """Log a precision-recall curve of binary `labels` and `predictions` in [0, 1] (optionally
        weighted), at `num_thresholds` thresholds i / (num_thresholds - 1), as TensorBoard computes it."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        weight = None if weights is None else _inputs.to_numpy(weights)
        curve = compute_curve(tag, _inputs.to_numpy(labels), _inputs.to_numpy(predictions), num_thresholds, weight)
        self._append_media("pr_curves", tag, step, wall_time, curve, curve.nbytes)

    def log_pr_curve_raw(
        self,
        tag: str,
        true_positive_counts: Any,
        false_positive_counts: Any,
        true_negative_counts: Any,
        false_negative_counts: Any,
        precision: Any,
        recall: Any,
        step: int | None = None,
        *,
        wall_time: float | None = None,
    ) -> None:
        """Log a precision-recall curve already computed: six sequences of one value per threshold."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        columns = (true_positive_counts, false_positive_counts, true_negative_counts, false_negative_counts)
        curve = check_raw_curve(tag, tuple(_inputs.to_numpy(c) for c in (*columns, precision, recall)))
        self._append_media("pr_curves", tag, step, wall_time, curve, curve.nbytes)

    def log_mesh(
        self,
        tag: str,
        vertices: Any,
        colors: Any = None,
        faces: Any = None,
        config: Mapping[str, Any] | None = None,
        step: int | None = None,
        *,
        wall_time: float | None = None,
    ) -> None:
        """Log meshes or point clouds: `vertices` B x N x 3 (or N x 3), `colors` B x N x 3 in 0..255, `faces`
        B x F x 3 vertex indices (none: a point cloud), `config` a JSON-able dict (three.js camera, lights,
        material) kept with each. Mesh b of the batch is stored as sample b."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        v, c, f = _inputs.check_mesh(tag, vertices, colors, faces)
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config of mesh {tag!r} must be a dict, not {type(config).__name__}")
        text = "" if config is None else json.dumps(dict(config), sort_keys=True, default=str)
        wall = time.time() if wall_time is None else float(wall_time)
        for b in range(v.shape[0]):
            mesh = Mesh(b, v[b], None if c is None else c[b], None if f is None else f[b], text)
            size = v[b].nbytes + (0 if c is None else c[b].nbytes) + (0 if f is None else f[b].nbytes)
            self._append_media("meshes", tag, step, wall, mesh, size)

    def log_tensor(self, tag: str, tensor: Any, step: int | None = None, *, wall_time: float | None = None) -> None:
        """Log a tensor's values as they are (bool, int8 .. uint64, float16 .. float64; at most 48 MiB)."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        array = _inputs.check_tensor(tag, tensor)
        self._append_media("tensors", tag, step, wall_time, array, array.nbytes)

    def set_tag_info(self, tag: str, display_name: str = "", description: str = "") -> None:
        """Say what a tag is: a title to show for it and a description (Markdown); the last given wins."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        if not isinstance(display_name, str) or not isinstance(description, str):
            raise TypeError(f"display_name and description of {tag!r} must be str")
        if len(display_name) > 1000 or len(description) > 65536:
            raise ValueError(f"display_name of {tag!r} is at most 1,000 characters, its description 65,536")
        if "\x00" in display_name or "\x00" in description:
            raise ValueError(f"display_name and description of {tag!r} must not contain NUL characters")
        self._append_sized(
            self._buffers.tag_info, pb.TagInfo(tag=tag, display_name=display_name, description=description), 0
        )

    def set_custom_scalars_layout(self, layout: Mapping[str, Any]) -> None:
        """Set the run's custom-scalar layout (chart groups of the Scalars tab); it replaces the previous one.

        `layout` is {"categories": [{"title", "closed", "charts": [{"title", "multiline": {"tags":
        [regex, ...]}} | {"title", "margin": {"series": [{"value", "lower", "upper"}, ...]}}]}]}."""
        if self._finished:
            raise RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()")
        self._append_sized(self._buffers.layouts, _inputs.check_layout(layout), 0)

    def _log_visdom(self, call: VisdomCallSource, size: int) -> None:
        """runstream.visdom.Visdom's calls: queued in order, built and sent by the sender thread."""
        self._append_sized(self._buffers.visdom, (call, size), size)

    def _visdom_read(self, endpoint: str, body: bytes) -> bytes:
        """runstream.visdom.Visdom's reads (the caller flushes first)."""
        return self._transport.visdom_read(endpoint, body)

    def _append_media(self, field: str, tag: str, step: int, wall_time: float | None, payload: Any, size: int) -> None:
        wall = time.time() if wall_time is None else float(wall_time)
        self._append_sized(self._buffers.media[field], ((tag, step, wall, payload), size), size)

    def log_graph(
        self,
        model: Any,
        input_to_model: Any = None,
        *,
        tag: str = "graph",
        use_strict_trace: bool = True,
        wall_time: float | None = None,
    ) -> None:
        """Log a model's graph: traced with torch.jit.trace on `input_to_model` (in eval mode, no autograd)
        on this thread, so that a tracing error reaches the caller (as GraphTraceError). `model` may also be
        a graph document (a dict, see runstream._graph). The first graph of a tag is step 0, the next 1."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        if isinstance(model, dict):
            doc = model
        else:
            from runstream._graph import trace_model

            doc = trace_model(model, input_to_model, use_strict_trace)
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
        if len(text) > _MAX_GRAPH_BYTES:
            raise ValueError(f"graph {tag!r} is {len(text)} bytes as JSON; the limit is {_MAX_GRAPH_BYTES}")
        step = self._graph_steps.get(tag, 0)
        self._graph_steps[tag] = step + 1
        wall = time.time() if wall_time is None else float(wall_time)
        self._append_sized(self._buffers.graphs, ((tag, step, wall, text), len(text)), len(text))

    def log_embedding(
        self, tag: str, matrix: Any, metadata: Any = None, images: Any = None, step: int | None = None
    ) -> None:
        """Log an embedding: `matrix` is N points x D dimensions (array or tensor, sent as float32).

        `metadata`: one value per point (one column, named "label"), or a mapping of column name to
        such values (at most 64 columns; strings of at most 1,000 characters). `images`: one image per
        point, NCHW (as torch's `label_img`), NHWC or NHW, uint8 or float in [0, 1], at most 512 x 512
        pixels each. Limits: 1 to 10,000,000 points, 1 to 16,384 dimensions, at most 2^31 values.
        `step` defaults to the last step logged. Logging the same tag and step again replaces the
        earlier embedding in the Projector (both stay in the `embeddings` view, told apart by wall_time).

        An embedding of at most 64 MiB (float32 and images) is copied here and sent in the background.
        A bigger one is not copied: the call sends it in chunks of rows and returns once the last chunk
        is encoded, so the SDK never holds it whole a second time.
        """
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        array = _inputs.check_embedding_matrix(tag, matrix)
        rows, dims = array.shape
        columns, values = ((), []) if metadata is None else _inputs.check_embedding_metadata(tag, metadata, rows)
        pictures = None if images is None else _inputs.check_embedding_images(tag, images, rows)
        picture_bytes = int(np.prod(pictures.shape[1:])) * pictures.itemsize if pictures is not None else 0
        size = rows * (dims * 4 + picture_bytes)
        small = size <= EMBEDDING_COPY_BYTES
        if small:  # converted to float32 once, a private copy: the caller may change its matrix at once
            array = np.array(array, dtype=np.float32, order="C")
            pictures = pictures.copy() if pictures is not None else None
        chunk_rows = embedding_chunk_rows(dims, picture_bytes, _metadata_row_bytes(columns, values))
        job = EmbeddingJob(tag, step, time.time(), array, columns, values, pictures, chunk_rows, counted=small)
        if small:
            self._append_sized(self._buffers.embeddings, job, size)
            return
        if self._finished:
            raise RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()")
        self._buffers.embeddings.append(job)
        self._sender.wake()
        while not job.done.wait(0.05):
            if not self._sender.alive:
                raise RunFinishedError(
                    f"run {self.id} stopped sending while embedding {tag!r} was sent; "
                    f"{job.rows - job.next_row} of its {job.rows} points were not taken"
                )

    def _log_scalar(self, keys: tuple[str, ...], step: int, wall_time: float, value: float) -> None:
        """The lean path of SummaryWriter.add_scalar: one checked tag (a 1-tuple from
        `_scalar_keys`), a checked step and a float; no checks here."""
        scalars = self._scalars
        scalars.append((step, wall_time, keys, _pack_one(value)))
        self._last_step = step
        waiting = len(scalars)
        if waiting >= 2048 and not waiting & 255:
            self._sender.wake()
            if waiting >= self._max_points:
                self._wait_for_room()

    def _scalar_keys(self, tag: str) -> tuple[str, ...]:
        """Check `tag` once; the 1-tuple that `_log_scalar` takes for it."""
        self._learn_tag(tag)
        return (tag,)

    def _append_sized(self, target: Any, item: Any, size: int) -> None:
        if self._finished:
            raise RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()")
        target.append(item)
        self._buffers.bytes_in += size
        self._sender.wake()
        if self._buffers.pending_bytes() > self._max_bytes:
            self._wait_for_room()

    def _learn_tag(self, tag: str) -> None:
        if self._finished:
            raise RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()")
        self._known_tags.add(_inputs.check_tag(tag))

    def _learn_tags(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        """Check tags not seen before; remember this tuple so the sender can group calls by identity."""
        if self._finished:
            raise RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()")
        for key in keys:
            if key not in self._known_tags:
                _inputs.check_tag(key)
                self._known_tags.add(key)
        self._keys = keys
        self._pack = _packer(len(keys))
        return keys

    def _wait_for_room(self) -> None:
        """Memory is bounded: when the server is away or slow, the training thread waits here."""
        if not self._waiting_warned:
            self._waiting_warned = True
            logger.warning(
                "runstream: the server at %s is not keeping up or is unreachable; log() waits until "
                "buffered points are sent (nothing is dropped)",
                self._settings.server,
            )
        buffers = self._buffers
        while self._sender.alive and (
            buffers.waiting_points() >= self._max_points or buffers.pending_bytes() > self._max_bytes
        ):
            self._sender.wake()
            time.sleep(0.01)

    # -- ending --------------------------------------------------------------

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until everything logged so far is committed by the server; False on timeout."""
        return self._sender.flush(timeout)

    def finish(self, status: str = "finished", timeout: float = 60.0) -> SendReport:
        """Send what is buffered (waiting at most `timeout` s), mark this rank finished, close.

        Returns what could not be sent; a warning says so too.
        """
        with self._lock:
            if self._finished:
                return SendReport(0, 0, 0, "")
            self._finished = True
        if self._forked:
            return SendReport(0, 0, 0, "")
        report = self._sender.close(timeout, status=status)
        self._buffers.refuse(RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()"))
        self._scalars = self._buffers.scalars
        if report.spool_dir:
            logger.warning(
                "runstream: run %s: %d points in %d batches %s kept in the spool %s; upload them with "
                "`runstream sync %s`",
                self.id,
                report.spooled_points,
                report.spooled_batches,
                "are" if self._settings.mode == "offline" else f"not acknowledged within {timeout:.0f}s are",
                report.spool_dir,
                self._settings.dir,
            )
        if report.dropped_points:
            logger.error(
                "runstream: run %s dropped %d points because its spool was full (policy drop)",
                self.id,
                report.dropped_points,
            )
        if report.lost_points - report.dropped_points > 0:
            logger.error(
                "runstream: run %s could not send %d points in %d batches to %s within %.0fs (%s); they are lost",
                self.id,
                report.lost_points - report.dropped_points,
                report.unsent_batches - report.spooled_batches,
                self._settings.server,
                timeout,
                report.last_error or "no acknowledgement",
            )
        # With batches left in the spool, `runstream sync` marks the rank finished after uploading them.
        if not report.spool_dir:
            finish = pb.FinishRunRequest(run_id=self.id, rank=self.rank, status=status, end_time=time.time())
            self._mark_finished(finish)
        self._transport.close()
        _live_runs.discard(self)
        return report

    def _mark_finished(self, request: pb.FinishRunRequest) -> None:
        """FinishRun; if the server does not answer and the transport moves to another address (several were
        given), the run is opened there (OpenRun is idempotent) and finished there."""
        server = self._transport.server
        try:
            self._transport.finish_run(request, timeout=10.0)
            return
        except TransportError as exc:
            error = exc
        if error.unreachable and self._transport.server != server:
            try:
                self._transport.open_run(self._open_request, timeout=10.0)
                self._transport.finish_run(request, timeout=10.0)
                return
            except TransportError as exc:
                error = exc
        logger.error("runstream: could not mark run %s as %s: %s", self.id, request.status, error.details)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    def __repr__(self) -> str:
        return f"<runstream.Run id={self.id!r} rank={self.rank} server={self._settings.server!r}>"


def _open_error(server: str, exc: TransportError, timeout: float, project: str = "") -> Exception:
    if exc.code == "UNAUTHENTICATED":
        return AuthError(
            f"the runstream server at {server} refused the token: {exc.details}. "
            "Set RUNSTREAM_TOKEN (or init(token=...)) to a token from the server's token file."
        )
    if exc.code == "PERMISSION_DENIED":
        return AuthError(
            f"the runstream server at {server} does not let this token write to project {project!r}: "
            f"{exc.details}. Use a token with the scope 'write:{project}' or 'write:*'."
        )
    if exc.unreachable:
        return ServerUnavailableError(
            f"cannot reach the runstream server at {server} within {timeout:.0f}s. Start one with "
            "`runstream serve`, or point RUNSTREAM_SERVER (or init(server=...)) at a running one."
        )
    if exc.code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):  # e.g. the id of a deleted run
        return ValueError(f"the server refused to open the run: {exc.details}")
    return ServerUnavailableError(f"opening the run on {server} failed: StatusCode.{exc.code}: {exc.details}")


def _after_fork_in_child() -> None:
    # The child inherits the parent's memory but not its sender thread: make its runs refuse
    # to log instead of filling buffers that nobody sends.
    for run in list(_live_runs):
        run._forked = True
        spool = run._sender.spool
        if spool is not None:  # drop the child's share of the spool's files and lock: the parent owns them
            spool.close()
        run._buffers.refuse(
            ForkedProcessError(
                f"run {run.id} belongs to the parent process; a forked child (a DataLoader worker, say) "
                "cannot log through it. Log from the parent, or call runstream.init() in the child."
            )
        )
        run._scalars = run._buffers.scalars
    _live_runs.clear()


def _finish_all_at_exit() -> None:
    for run in list(_live_runs):
        run.finish()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_finish_all_at_exit)
