"""The background sender: drains the run's buffers into batches and streams them over gRPC.

The training thread only appends to deques (see _run.py). This thread encodes,
sends, and keeps every batch until the server acknowledges it, which happens
only after the batch is committed. On a broken stream it reconnects with
backoff and resends, in order, whatever is unacknowledged; the server's
(writer_id, seq) check makes the resend idempotent.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from runstream._encode import EncodedBatch, HistogramRow, ImageRow, ScalarRow, encode_batch
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc

logger = logging.getLogger("runstream")

REJECTED_SEQ_KEY = "runstream-rejected-seq"


@dataclass(frozen=True)
class SenderLimits:
    flush_interval: float = 0.1  # seconds between flushes when little is logged
    batch_points: int = 200_000  # scalar points per batch
    batch_bytes: int = 16 << 20  # raw histogram values and image pixels per batch
    max_unacked: int = 8  # batches in flight or waiting for an ack
    backoff_initial: float = 0.1
    backoff_max: float = 5.0


@dataclass(frozen=True)
class SendReport:
    """What `finish()` could not deliver; all zero when every point was acknowledged."""

    unsent_points: int
    unsent_batches: int
    rejected_batches: int
    last_error: str

    @property
    def complete(self) -> bool:
        return self.unsent_points == 0 and self.unsent_batches == 0


class _Refusing:
    def __init__(self, error: Exception) -> None:
        self._error = error

    def append(self, item: object) -> None:
        raise self._error

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return False


class Buffers:
    """Where the training thread puts points. Deque appends are atomic, so no lock is held."""

    def __init__(self) -> None:
        self.scalars: deque[ScalarRow] = deque()
        self.histograms: deque[tuple[HistogramRow, int]] = deque()  # row, payload bytes
        self.images: deque[tuple[ImageRow, int]] = deque()
        self.bytes_in = 0  # payload bytes appended (written by the training thread only)
        self.bytes_out = 0  # payload bytes taken (written by the sender only)

    def refuse(self, error: Exception) -> None:
        """From now on every append raises `error` (after finish(), or in a forked child)."""
        refusing = _Refusing(error)
        self.scalars = self.histograms = self.images = refusing  # type: ignore[assignment]

    def pending_bytes(self) -> int:
        return self.bytes_in - self.bytes_out

    def empty(self) -> bool:
        return not (self.scalars or self.histograms or self.images)


class _Stream:
    """One Write call: requests go in through a queue, acks come back on a reader thread."""

    def __init__(
        self,
        stub: pb_grpc.IngestStub,
        metadata: tuple[tuple[str, str], ...],
        on_ack: Callable[[pb.WriteAck], None],
        on_end: Callable[[_Stream, grpc.RpcError | None], None],
    ) -> None:
        self.requests: queue.SimpleQueue[pb.Batch | None] = queue.SimpleQueue()
        self.sent_upto = 0
        self.alive = True
        self._on_ack = on_ack
        self._on_end = on_end
        self._call = stub.Write(self._request_iterator(), metadata=metadata)
        self._reader = threading.Thread(target=self._read_acks, name="runstream-acks", daemon=True)
        self._reader.start()

    def _request_iterator(self) -> Iterator[pb.Batch]:
        while True:
            item = self.requests.get()
            if item is None:
                return
            yield item

    def send(self, message: pb.Batch) -> None:
        self.requests.put(message)

    def close(self) -> None:
        self.requests.put(None)

    def cancel(self) -> None:
        self.requests.put(None)
        self._call.cancel()

    def _read_acks(self) -> None:
        error: grpc.RpcError | None = None
        try:
            for ack in self._call:
                self._on_ack(ack)
        except grpc.RpcError as exc:
            error = exc
        self.alive = False
        self._on_end(self, error)


class Sender:
    def __init__(
        self,
        channel: grpc.Channel,
        metadata: tuple[tuple[str, str], ...],
        run_id: str,
        rank: int,
        writer_id: str,
        buffers: Buffers,
        limits: SenderLimits = SenderLimits(),
    ) -> None:
        self._stub = pb_grpc.IngestStub(channel)
        self._metadata = metadata
        self._run_id = run_id
        self._rank = rank
        self._writer_id = writer_id
        self._buffers = buffers
        self._limits = limits
        self._next_seq = 1
        self._unacked: OrderedDict[int, EncodedBatch] = OrderedDict()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stream: _Stream | None = None
        self._stream_failed_at = 0.0
        self._backoff = limits.backoff_initial
        self._retry_at = 0.0
        self._closing = False
        self._deadline = float("inf")
        self._rejected = 0
        self._last_error = ""
        self._thread = threading.Thread(target=self._loop, name="runstream-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        if not self._wake.is_set():  # set() takes a lock; log() calls this often
            self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Wait until everything logged so far is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._cond:
            while not (self._buffers.empty() and not self._unacked):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.05))
                self._wake.set()
        return True

    def close(self, timeout: float) -> SendReport:
        """Send what is buffered, wait up to `timeout` s for acks, then stop; report what is left."""
        self._deadline = time.monotonic() + timeout
        self._closing = True
        self._wake.set()
        self._thread.join(timeout + 1.0)
        with self._cond:
            unsent = sum(b.points for b in self._unacked.values())
            unsent += sum(len(r[2]) for r in self._buffers.scalars)
            unsent += len(self._buffers.histograms) + len(self._buffers.images)
            return SendReport(
                unsent_points=unsent,
                unsent_batches=len(self._unacked),
                rejected_batches=self._rejected,
                last_error=self._last_error,
            )

    # -- the sender thread -------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait(self._limits.flush_interval)
                self._wake.clear()
                self._encode_pending()
                self._pump()
                if self._closing:
                    with self._cond:
                        done = self._buffers.empty() and not self._unacked
                    if done or time.monotonic() >= self._deadline:
                        break
        except Exception:  # pragma: no cover - a bug; say so rather than die silently
            logger.exception("runstream: the sender thread failed; points logged from now on are not sent")
        finally:
            if self._stream is not None:
                self._stream.close() if not self._unacked else self._stream.cancel()

    def _encode_pending(self) -> None:
        buffers = self._buffers
        while not buffers.empty():
            with self._cond:
                if len(self._unacked) >= self._limits.max_unacked:
                    return
            batch = self._take_batch()
            with self._cond:
                self._unacked[batch.seq] = batch
                self._cond.notify_all()
            self._pump()  # send each batch as soon as it is encoded

    def _take_batch(self) -> EncodedBatch:
        buffers, limits = self._buffers, self._limits
        scalars: list[ScalarRow] = []
        points = 0
        while buffers.scalars and points < limits.batch_points:
            row = buffers.scalars.popleft()
            scalars.append(row)
            points += len(row[2])
        histograms: list[HistogramRow] = []
        images: list[ImageRow] = []
        taken = 0
        while buffers.histograms and taken < limits.batch_bytes:
            hist_row, size = buffers.histograms.popleft()
            histograms.append(hist_row)
            taken += size
        while buffers.images and taken < limits.batch_bytes:
            image_row, size = buffers.images.popleft()
            images.append(image_row)
            taken += size
        buffers.bytes_out += taken
        seq = self._next_seq
        self._next_seq += 1
        return encode_batch(self._run_id, self._rank, self._writer_id, seq, scalars, histograms, images)

    def _pump(self) -> None:
        """Make sure a stream is open and every unacknowledged batch has been put on it."""
        if self._stream is None or not self._stream.alive:
            if time.monotonic() < self._retry_at:
                return
            with self._cond:
                if not self._unacked:
                    return
            self._stream = _Stream(self._stub, self._metadata, self._on_ack, self._on_stream_end)
        stream = self._stream
        with self._cond:
            to_send = [b for seq, b in self._unacked.items() if seq > stream.sent_upto]
        for batch in to_send:
            stream.send(batch.message)
            stream.sent_upto = batch.seq

    def _on_ack(self, ack: pb.WriteAck) -> None:
        with self._cond:
            self._unacked.pop(ack.seq, None)
            self._backoff = self._limits.backoff_initial
            self._cond.notify_all()
        self._wake.set()

    def _on_stream_end(self, stream: _Stream, error: grpc.RpcError | None) -> None:
        if error is None:
            return
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        self._last_error = f"{code.name if code else 'ERROR'}: {details}"
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            self._drop_rejected(error, details or "")
            self._retry_at = 0.0
        elif code == grpc.StatusCode.CANCELLED and self._closing:
            return
        else:
            delay = self._backoff * (0.5 + random.random())
            self._backoff = min(self._backoff * 2, self._limits.backoff_max)
            self._retry_at = time.monotonic() + delay
            logger.debug("runstream: stream ended (%s); retrying in %.2fs", self._last_error, delay)
        self._wake.set()

    def _drop_rejected(self, error: grpc.RpcError, details: str) -> None:
        metadata = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        trailing: dict[str, Any] = {item.key: item.value for item in metadata or ()}
        raw_seq = trailing.get(REJECTED_SEQ_KEY)
        with self._cond:
            seq = int(raw_seq) if raw_seq else next(iter(self._unacked), 0)
            batch = self._unacked.pop(seq, None)
            self._rejected += 1
            self._cond.notify_all()
        lost = batch.points if batch else 0
        logger.error("runstream: the server rejected batch %d (%d points): %s", seq, lost, details)
