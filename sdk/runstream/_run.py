"""`runstream.init()` and `Run`: the part of the SDK a training loop touches.

`Run.log` is the hot path. It checks its input, then appends one tuple to a
deque; encoding, PNG compression, histogram binning and the network all happen
on the sender thread (_sender.py).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from runstream import _inputs
from runstream._encode import BinnedHistogram, RawHistogram
from runstream._errors import ForkedProcessError, RunFinishedError, ServerUnavailableError
from runstream._sender import Buffers, Sender, SenderLimits, SendReport
from runstream._settings import SdkConfig, resolve
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc

logger = logging.getLogger("runstream")

MAX_MESSAGE_BYTES = 64 << 20
_now = time.time
_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    server: str | None = None,
    token: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    connect_timeout: float = 10.0,
    max_buffered_points: int = 2_000_000,
    max_buffered_bytes: int = 256 << 20,
) -> Run:
    """Start a run, or join it as one rank of a distributed job, and return it.

    Arguments win over the environment (RUNSTREAM_SERVER, RUNSTREAM_TOKEN,
    RUNSTREAM_PROJECT, RUNSTREAM_RUN_ID or TORCHELASTIC_RUN_ID, RANK, WORLD_SIZE).
    Raises ServerUnavailableError if the server does not answer within `connect_timeout` s.
    """
    settings = resolve(
        {"project": project, "server": server, "token": token, "run_id": run_id, "rank": rank, "world_size": world_size}
    )
    if settings.mode == "offline":
        raise NotImplementedError(
            "RUNSTREAM_MODE=offline is not available yet; unset it and run `runstream serve` to stream online"
        )
    config_json = json.dumps(dict(config or {}), default=str, allow_nan=True)
    return Run._open(settings, name, config_json, connect_timeout, max_buffered_points, max_buffered_bytes)


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
    ) -> Run:
        run = cls.__new__(cls)
        run._settings = settings
        run._metadata = (("authorization", f"Bearer {settings.token}"),) if settings.token else ()
        run._channel = grpc.insecure_channel(
            settings.server,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        request = pb.OpenRunRequest(
            project=settings.project,
            name=name or "",
            config_json=config_json,
            run_id=settings.run_id,
            rank=settings.rank,
            world_size=settings.world_size,
            host=socket.gethostname(),
            start_time=time.time(),
        )
        try:
            reply = pb_grpc.IngestStub(run._channel).OpenRun(
                request, timeout=connect_timeout, wait_for_ready=True, metadata=run._metadata
            )
        except grpc.RpcError as exc:
            run._channel.close()
            raise _open_error(settings.server, exc, connect_timeout) from None
        run.id = reply.run_id
        run.rank = settings.rank
        run._buffers = Buffers()
        run._scalars = run._buffers.scalars
        run._max_points = max_buffered_points
        run._max_bytes = max_buffered_bytes
        run._next_step = 0
        run._last_step = 0
        run._known_tags = set()
        run._keys = ()
        run._finished = False
        run._forked = False
        run._waiting_warned = False
        run._lock = threading.Lock()
        run._sender = Sender(
            run._channel, run._metadata, run.id, settings.rank, uuid.uuid4().hex, run._buffers, SenderLimits()
        )
        run._sender.start()
        _live_runs.add(run)
        return run

    # Attributes set by _open (declared for type checkers).
    id: str
    rank: int
    _settings: SdkConfig
    _metadata: tuple[tuple[str, str], ...]
    _channel: grpc.Channel
    _buffers: Buffers
    _scalars: Any  # the deque of _buffers, bound here to save a lookup per call
    _sender: Sender
    _max_points: int
    _max_bytes: int
    _next_step: int
    _last_step: int
    _known_tags: set[str]
    _keys: tuple[str, ...]
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
        values = tuple(data.values())
        for value in values:
            if type(value) is not float:
                values = tuple(_inputs.to_float(k, v) for k, v in zip(keys, values))
                break
        self._next_step = step + 1
        self._last_step = step
        scalars = self._scalars
        scalars.append((step, _now(), keys, values))
        if len(scalars) >= 2048:
            self._sender.wake()
            if len(scalars) * len(keys) >= self._max_points:
                self._wait_for_room(len(keys))

    def log_histogram(
        self,
        tag: str,
        values: Any,
        step: int | None = None,
        bins: int | str | Any = 64,
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
        self._append_sized(self._buffers.histograms, ((tag, step, time.time(), histogram), size), size)

    def log_image(self, tag: str, image: Any, step: int | None = None) -> None:
        """Log an image: HW, HWC or CHW array or tensor (uint8, or float in [0, 1]) or a PIL image."""
        if tag not in self._known_tags:
            self._learn_tag(tag)
        step = self._last_step if step is None else _inputs.check_step(step)
        array = _inputs.check_image(image)
        self._append_sized(self._buffers.images, ((tag, step, time.time(), array), array.nbytes), array.nbytes)

    def _append_sized(self, target: Any, item: Any, size: int) -> None:
        if self._finished:
            raise RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()")
        target.append(item)
        self._buffers.bytes_in += size
        self._sender.wake()
        if self._buffers.pending_bytes() > self._max_bytes:
            self._wait_for_room(1)

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
        return keys

    def _wait_for_room(self, tags_per_call: int) -> None:
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
            len(buffers.scalars) * tags_per_call >= self._max_points or buffers.pending_bytes() > self._max_bytes
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
        report = self._sender.close(timeout)
        self._buffers.refuse(RunFinishedError(f"run {self.id} is finished; start a new one with runstream.init()"))
        self._scalars = self._buffers.scalars
        if not report.complete:
            logger.error(
                "runstream: run %s could not send %d points in %d batches to %s within %.0fs (%s); they are lost",
                self.id,
                report.unsent_points,
                report.unsent_batches,
                self._settings.server,
                timeout,
                report.last_error or "no acknowledgement",
            )
        try:
            pb_grpc.IngestStub(self._channel).FinishRun(
                pb.FinishRunRequest(run_id=self.id, rank=self.rank, status=status, end_time=time.time()),
                timeout=10.0,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            logger.error("runstream: could not mark run %s as %s: %s", self.id, status, exc.details())
        self._channel.close()
        _live_runs.discard(self)
        return report

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish("failed" if exc_type is not None else "finished")

    def __repr__(self) -> str:
        return f"<runstream.Run id={self.id!r} rank={self.rank} server={self._settings.server!r}>"


def _open_error(server: str, exc: grpc.RpcError, timeout: float) -> Exception:
    code = exc.code() if hasattr(exc, "code") else None
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ServerUnavailableError(
            f"cannot reach the runstream server at {server} within {timeout:.0f}s. Start one with "
            "`runstream serve`, or point RUNSTREAM_SERVER (or init(server=...)) at a running one."
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ValueError(f"the server refused to open the run: {exc.details()}")
    return ServerUnavailableError(f"opening the run on {server} failed: {code}: {exc.details()}")


def _after_fork_in_child() -> None:
    # The child inherits the parent's memory but not its sender thread: make its runs refuse
    # to log instead of filling buffers that nobody sends.
    for run in list(_live_runs):
        run._forked = True
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
