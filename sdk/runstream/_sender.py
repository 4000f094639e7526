"""The background sender: drains the run's buffers into batches and streams them to the server.

The training thread only appends to deques (see _run.py). This thread encodes,
sends, and keeps every batch until the server acknowledges it, which happens
only after the batch is committed. On a broken stream it reconnects with
backoff and resends, in order, whatever is unacknowledged; the server's
(writer_id, seq) check makes the resend idempotent. It talks to the server only
through a `Transport` (_transport.py), so its logic runs against a fake one in
tests/unit/test_sender.py; its mode (`SenderMode`) says where new batches go.

The disk spool (_spool.py) takes over when memory should not hold more: while the server is
unreachable (or the run is offline) every new batch, and the unacknowledged ones in memory, are
written to the spool; while the server is reachable but slow, batches spill to the spool once the
window of `max_unacked` batches is full and the buffers hold `spill_points` points or `spill_bytes`.
Seqs in memory are always below the seqs only on disk, so replaying (memory first, then the spool in
seq order) keeps the order; the server's (writer_id, seq) check makes replays idempotent.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runstream._encode import (
    MAX_VISDOM_CALLS,
    MEDIA_FIELDS,
    EmbeddingChunk,
    EmbeddingJob,
    EncodedBatch,
    GraphRow,
    HistogramRow,
    ImageRow,
    MediaRow,
    ScalarRow,
    TextRow,
    VisdomCallSource,
    encode_batch,
    encode_visdom_calls,
    media_points,
)
from runstream._spool import Spool
from runstream._transport import Transport, TransportError, WriteStream
from runstream.v1 import ingest_pb2 as pb

logger = logging.getLogger("runstream")


class SenderMode(enum.Enum):
    """Where new batches go, and what the sender does about the server meanwhile.

    | mode         | new batches go to                          | the sender meanwhile                       |
    | ------------ | ------------------------------------------ | ------------------------------------------ |
    | OFFLINE      | the spool                                  | never contacts a server                    |
    | UNOPENED     | the spool                                  | retries OpenRun with backoff               |
    | DISCONNECTED | the spool (and the window is copied there) | reconnects at the retry time, resends      |
    | CONNECTED    | the window; the spool once the server is   | streams every batch as soon as it is made  |
    |              | slow (window full, buffers half full)      |                                            |

    Transitions, each made by `Sender._enter` (which logs it at debug level):

    | from         | to           | when                                                              |
    | ------------ | ------------ | ----------------------------------------------------------------- |
    | (start)      | OFFLINE      | `mode="offline"`; there is no way out of it                       |
    | (start)      | UNOPENED     | the server did not answer `init()`'s OpenRun                      |
    | (start)      | CONNECTED    | it did                                                            |
    | UNOPENED     | DISCONNECTED | OpenRun succeeded now; the first ack will prove the stream works  |
    | DISCONNECTED | CONNECTED    | an ack arrived                                                    |
    | CONNECTED    | DISCONNECTED | the stream ended with an error other than a rejected batch        |

    Closing is not a mode but a deadline beside it (`Sender._close_deadline`): a run is closed in any
    mode, and closing changes neither where batches go nor whether the server is retried; it only
    makes the loop end once everything is delivered or the deadline has passed.
    """

    OFFLINE = "offline"
    UNOPENED = "unopened"
    DISCONNECTED = "disconnected"
    CONNECTED = "connected"


@dataclass(frozen=True)
class SenderLimits:
    flush_interval: float = 0.1  # seconds between flushes when little is logged
    batch_points: int = 200_000  # scalar points per batch
    batch_bytes: int = 16 << 20  # raw histogram values and image pixels per batch
    max_unacked: int = 8  # batches in flight or waiting for an ack
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    spill_points: int = 500_000  # connected but slow: spool once the buffers hold this many points...
    spill_bytes: int = 64 << 20  # ...or this many bytes of histograms and images (and the window is full)
    spool_interval: float = 0.5  # to the spool: a batch per this many seconds at most (fewer, bigger batches)


@dataclass(frozen=True)
class SendReport:
    """What `finish()` could not deliver; all zero when every point was acknowledged."""

    unsent_points: int
    unsent_batches: int
    rejected_batches: int
    last_error: str
    spooled_points: int = 0  # of the unsent points, those kept in the spool for `runstream sync`
    spooled_batches: int = 0
    spool_dir: str = ""
    dropped_points: int = 0  # dropped because the spool's budget was exhausted (policy "drop")

    @property
    def lost_points(self) -> int:
        return max(self.unsent_points - self.spooled_points, 0) + self.dropped_points

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
        self.texts: deque[tuple[TextRow, int]] = deque()
        self.graphs: deque[tuple[GraphRow, int]] = deque()
        self.embeddings: deque[EmbeddingJob] = deque()  # the head one is taken a chunk at a time
        # audio, videos, PR curves, meshes, tensors: (row, payload bytes) by the Batch field of their kind
        self.media: dict[str, deque[tuple[MediaRow, int]]] = {name: deque() for name in MEDIA_FIELDS}
        self.tag_info: deque[pb.TagInfo] = deque()  # sent with the next batch
        self.layouts: deque[str] = deque()  # custom-scalar layouts (JSON); the last one taken wins
        self.visdom: deque[tuple[VisdomCallSource, int]] = deque()  # runstream.visdom's calls, in order
        self.bytes_in = 0  # payload bytes appended (written by the training thread only)
        self.bytes_out = 0  # payload bytes taken (written by the sender only)

    def refuse(self, error: Exception) -> None:
        """From now on every append raises `error` (after finish(), or in a forked child)."""
        refusing = _Refusing(error)
        self.scalars = self.histograms = self.images = self.texts = refusing  # type: ignore[assignment]
        self.graphs = refusing  # type: ignore[assignment]
        self.embeddings = refusing  # type: ignore[assignment]
        self.media = {name: refusing for name in MEDIA_FIELDS}  # type: ignore[misc]
        self.tag_info = self.layouts = self.visdom = refusing  # type: ignore[assignment]

    def pending_bytes(self) -> int:
        return self.bytes_in - self.bytes_out

    def waiting_points(self) -> int:
        """Scalar points waiting, estimated as rows times the tags of the last row: one len() instead of
        a sum over the rows (a training loop logs the same tags call after call). Safe from either thread."""
        scalars = self.scalars
        rows = len(scalars)
        if not rows:
            return 0
        try:
            return rows * len(scalars[-1][2])
        except IndexError:  # the sender took every row meanwhile (called from the training thread)
            return 0

    def empty(self) -> bool:
        if self.scalars or self.histograms or self.images or self.texts or self.graphs or self.embeddings:
            return False
        return not (self.tag_info or self.layouts or self.visdom or any(self.media.values()))


def _embedding_points(message: pb.Batch) -> int:
    if not message.HasField("embeddings"):
        return 0
    return int(np.frombuffer(message.embeddings.rows, "<u4").sum())


class Sender:
    """Drains `buffers` into batches, sends them through `transport`, keeps them until acknowledged.

    Its mode (`SenderMode`) says where new batches go; `clock` times its schedule (retries, the
    spool interval, `close`'s deadline) and is a parameter so that tests can run it on a fake clock.
    """

    def __init__(
        self,
        transport: Transport,
        run_id: str,
        rank: int,
        writer_id: str,
        buffers: Buffers,
        limits: SenderLimits = SenderLimits(),
        *,
        spool: Spool | None = None,
        spool_factory: Callable[[], Spool] | None = None,
        open_request: pb.OpenRunRequest | None = None,
        opened: bool = False,
        offline: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._spool = spool  # recovered (runstream sync) or created on first need by spool_factory
        self._spool_factory = spool_factory
        self._spool_failed = False
        self._spool_only: deque[int] = deque(spool.pending() if spool is not None else ())  # ascending
        self._held: EncodedBatch | None = None  # encoded, waiting for room in a full spool (policy block)
        self._in_hand = False  # a batch is being taken and encoded (see _take_batch)
        # The run's OpenRun: sent while the mode is UNOPENED, and again to each server the transport moves to
        # (a writer given several addresses fails over to a server that may not know the run yet).
        self._open_request = open_request
        self._opened_on = transport.server if opened else None
        if offline:
            self._mode = SenderMode.OFFLINE
        elif open_request is not None and not opened:
            self._mode = SenderMode.UNOPENED
        else:
            self._mode = SenderMode.CONNECTED
        self._acked_upto = 0
        self._dropped_points = 0
        self._dropped_batches = 0
        self._budget_warned = False
        self._spooled_at = 0.0
        self.acked_batches = 0  # acknowledged by the server (committed, or duplicates of committed ones)
        self.acked_points = 0
        self._run_id = run_id
        self._rank = rank
        self._writer_id = writer_id
        self._buffers = buffers
        self._limits = limits
        self._next_seq = (self._spool_only[-1] + 1) if self._spool_only else 1
        self._unacked: OrderedDict[int, EncodedBatch] = OrderedDict()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stream: WriteStream | None = None
        self._backoff = limits.backoff_initial
        self._retry_at = 0.0  # no new stream (or OpenRun) before this time of `clock`
        self._close_deadline: float | None = None  # set by close(): stop once drained or past it
        self._rejected = 0
        self._last_error = ""
        self._spool_points: dict[int, int] = {}  # seq -> points of batches written to the spool
        self._thread = threading.Thread(target=self._loop, name="runstream-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def mode(self) -> SenderMode:
        return self._mode

    def _enter(self, mode: SenderMode, why: str) -> None:
        """The one place the mode changes (from the sender thread or an ack reader thread)."""
        with self._cond:
            if self._mode is mode:
                return
            logger.debug("runstream: sender of run %s: %s -> %s (%s)", self._run_id, self._mode.name, mode.name, why)
            self._mode = mode

    def wake(self) -> None:
        if not self._wake.is_set():  # set() takes a lock; log() calls this often
            self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Wait until everything logged so far is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._cond:
            while not self._drained():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.05))
                self._wake.set()
        return True

    def _drained(self) -> bool:
        """Everything logged so far is acknowledged (offline: written to the spool)."""
        if not self._buffers.empty() or self._held is not None or self._in_hand:
            return False
        return self._mode is SenderMode.OFFLINE or not (self._unacked or self._spool_only)

    @property
    def spool(self) -> Spool | None:
        return self._spool

    def close(self, timeout: float, status: str | None = None, keep_spool: bool = False) -> SendReport:
        """Send what is buffered, wait up to `timeout` s for acks, then stop; report what is left.

        What is still unacknowledged then is written to the spool (if one can be made), with
        `status` as the run's end for `runstream sync`; an empty spool is removed unless `keep_spool`.
        """
        self._close_deadline = self._clock() + timeout
        self._wake.set()
        self._thread.join(timeout + 5.0)
        unopened = self._mode in (SenderMode.OFFLINE, SenderMode.UNOPENED)  # the server has not heard of the run
        spool = self._get_spool() if unopened else self._spool
        with self._cond:
            spooled = set(spool.pending()) if spool is not None else set()
            spooled_points = sum(self._spool_points.get(seq, 0) for seq in spooled)
            in_memory = [b for b in self._unacked.values() if b.seq not in spooled]
            if self._held is not None and self._held.seq not in spooled:
                in_memory.append(self._held)
            unsent = sum(b.points for b in in_memory) + spooled_points
            unsent += sum(len(r[2]) for r in self._buffers.scalars)
            unsent += len(self._buffers.histograms) + len(self._buffers.images) + len(self._buffers.texts)
            unsent += len(self._buffers.graphs)
            unsent += sum(job.rows - job.next_row for job in self._buffers.embeddings)
            unsent += sum(len(rows) for rows in self._buffers.media.values())
            if spool is not None:
                if not spooled and not keep_spool and not unopened:
                    spool.remove()
                    spool = None
                else:
                    if status is not None:
                        spool.mark_finished(status, time.time())
                    spool.close()
            return SendReport(
                unsent_points=unsent,
                unsent_batches=len(in_memory) + len(spooled),
                rejected_batches=self._rejected,
                last_error=self._last_error,
                spooled_points=spooled_points,
                spooled_batches=len(spooled),
                spool_dir=str(spool.path) if spool is not None else "",
                dropped_points=self._dropped_points,
            )

    # -- the sender thread -------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait(self._limits.flush_interval)
                self._wake.clear()
                self._forget_acked()
                if self._mode is not SenderMode.CONNECTED:
                    self._persist_window()
                self._load_from_spool()
                self._encode_pending()
                self._pump()
                if self._close_deadline is not None:
                    with self._cond:
                        done = self._drained()
                    if done or self._clock() >= self._close_deadline:
                        break
        except Exception:  # pragma: no cover - a bug; say so rather than die silently
            logger.exception("runstream: the sender thread failed; points logged from now on are not sent")
        finally:
            if self._stream is not None:
                self._stream.close() if not self._unacked else self._stream.cancel()
            try:
                self._forget_acked()
                self._spool_the_rest()
            except Exception:  # pragma: no cover
                logger.exception("runstream: writing the unsent batches to the spool failed")

    # -- the spool (sender thread only) -------------------------------------

    def _get_spool(self) -> Spool | None:
        if self._spool is None and self._spool_factory is not None and not self._spool_failed:
            try:
                self._spool = self._spool_factory()
            except Exception as exc:
                self._spool_failed = True
                logger.error(
                    "runstream: cannot create the spool (%s); batches wait in memory instead, and log() waits "
                    "when memory is full",
                    exc,
                )
        return self._spool

    def _forget_acked(self) -> None:
        spool = self._spool
        if spool is not None and self._acked_upto > spool.acked:
            for seq in spool.ack(self._acked_upto):
                self._spool_points.pop(seq, None)
        while self._spool_only and self._spool_only[0] <= self._acked_upto:
            self._spool_only.popleft()

    def _persist_window(self) -> None:
        """The server is away: put the unacknowledged batches held in memory on disk too."""
        with self._cond:
            batches = [b for b in self._unacked.values()]
        if not batches:
            return
        spool = self._get_spool()
        if spool is None:
            return
        for batch in batches:
            if batch.seq not in spool and batch.seq > self._acked_upto:
                data = batch.message.SerializeToString()
                if not spool.has_room(len(data)):
                    return
                spool.append(batch.seq, data)
                self._spool_points[batch.seq] = batch.points

    def _load_from_spool(self) -> None:
        """Move the oldest spooled batches into the in-memory window (to be sent), while it has room."""
        if self._mode is SenderMode.OFFLINE or self._spool is None:
            return
        while self._spool_only:
            with self._cond:
                if len(self._unacked) >= self._limits.max_unacked:
                    return
            seq = self._spool_only[0]
            try:
                data = self._spool.read(seq)
            except KeyError:  # acknowledged meanwhile
                self._spool_only.popleft()
                continue
            message = pb.Batch.FromString(data)
            points = len(message.scalars.value) // 8 + len(message.histograms.step) // 8 + len(message.images.data)
            points += len(message.texts.text) if message.HasField("texts") else 0
            points += len(message.graphs.doc) if message.HasField("graphs") else 0
            points += _embedding_points(message) + media_points(message)
            self._spool_points.setdefault(seq, points)
            with self._cond:
                self._unacked[seq] = EncodedBatch(seq, message, points, len(data))
                self._spool_only.popleft()
                self._cond.notify_all()

    def _must_spool(self, window_has_room: bool) -> bool:
        if self._mode is not SenderMode.CONNECTED or self._spool_only:
            return True
        if window_has_room:
            return False
        points = self._buffers.waiting_points()
        return points >= self._limits.spill_points or self._buffers.pending_bytes() >= self._limits.spill_bytes

    def _to_spool(self, batch: EncodedBatch, spool: Spool, force: bool = False) -> bool:
        """Write `batch` to the spool; False (batch held) when the budget is exhausted under "block"."""
        data = batch.message.SerializeToString()
        if self._mode is SenderMode.OFFLINE and spool.policy == "block":
            force = True  # offline, nothing would ever free room: blocking would hang the job for good
            if not self._budget_warned and not spool.has_room(len(data)):
                self._budget_warned = True
                logger.warning(
                    "runstream: the offline spool %s is past its budget (%d bytes); it keeps growing (policy block "
                    "cannot wait for a server in offline mode; RUNSTREAM_SPOOL_POLICY=drop drops instead)",
                    spool.path,
                    spool.budget_bytes,
                )
        if not force and not spool.has_room(len(data)):
            if spool.policy == "drop":
                self._dropped_batches += 1
                self._dropped_points += batch.points
                if self._dropped_batches == 1 or self._dropped_batches % 100 == 0:
                    logger.warning(
                        "runstream: the spool %s is full (%d bytes, policy drop): dropped %d points in %d batches "
                        "so far",
                        spool.path,
                        spool.budget_bytes,
                        self._dropped_points,
                        self._dropped_batches,
                    )
                return True
            if not self._budget_warned:
                self._budget_warned = True
                logger.warning(
                    "runstream: the spool %s is full (%d bytes, policy block); log() waits once memory is full "
                    "too, until the server takes batches again",
                    spool.path,
                    spool.budget_bytes,
                )
            self._held = batch
            return False
        spool.append(batch.seq, data)
        self._spool_points[batch.seq] = batch.points
        self._spool_only.append(batch.seq)
        return True

    def _spool_the_rest(self) -> None:
        """Closing: whatever is not acknowledged goes to the spool, so `runstream sync` can send it."""
        with self._cond:
            if self._drained() and self._mode is not SenderMode.OFFLINE:
                return
            memory = [b for b in self._unacked.values() if b.seq > self._acked_upto]
        if not memory and self._held is None and self._buffers.empty():
            return
        spool = self._get_spool()
        if spool is None:
            return
        for batch in memory:
            if batch.seq not in spool:
                spool.append(batch.seq, batch.message.SerializeToString())
                self._spool_points[batch.seq] = batch.points
        if self._held is not None:
            held, self._held = self._held, None
            self._to_spool(held, spool, force=True)
        while not self._buffers.empty():
            self._to_spool(self._take_batch(), spool, force=True)
            self._in_hand = False
        spool.sync()

    def _encode_pending(self) -> None:
        buffers = self._buffers
        while self._held is not None or not buffers.empty():
            with self._cond:
                room = len(self._unacked) < self._limits.max_unacked
            # A batch held back by a full spool takes a free place in the window when nothing is spooled
            # before it: the order holds, and a batch larger than the whole budget cannot stall the run.
            held_fits = self._held is not None and room and not self._spool_only
            spool = self._get_spool() if self._must_spool(room) and not held_fits else None
            if spool is None:  # memory: the window, as long as it has room (else log() waits)
                if not room:
                    return
                if self._held is not None:
                    self._in_hand = True
                    batch, self._held = self._held, None
                else:
                    batch = self._take_batch()
                with self._cond:
                    self._unacked[batch.seq] = batch
                    self._in_hand = False
                    self._cond.notify_all()
                self._pump()  # send each batch as soon as it is encoded
                continue
            if self._held is not None:
                self._in_hand = True
                batch, self._held = self._held, None
            else:
                if self._close_deadline is None and self._spool_soon():
                    return
                batch = self._take_batch()
            self._spooled_at = self._clock()
            placed = self._to_spool(batch, spool)
            self._in_hand = False
            if not placed:
                return

    def _spool_soon(self) -> bool:
        """Wait a little for a bigger batch: spooled batches are replayed one by one, small ones slowly."""
        if self._clock() - self._spooled_at >= self._limits.spool_interval:
            return False
        points = self._buffers.waiting_points()
        limits = self._limits
        return points < min(limits.batch_points // 2, limits.spill_points) and self._buffers.pending_bytes() < min(
            limits.batch_bytes // 2, limits.spill_bytes
        )

    def _take_batch(self) -> EncodedBatch:
        # Taken from the buffers but not yet in the window or the spool (encoding PNG, WAV, APNG takes a
        # while): flush() must not see the run as drained meanwhile.
        self._in_hand = True
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
        texts: list[TextRow] = []
        while buffers.texts and taken < limits.batch_bytes and len(texts) < 10_000:
            text_row, size = buffers.texts.popleft()
            texts.append(text_row)
            taken += size
        graphs: list[GraphRow] = []
        # A graph may be larger than batch_bytes (up to 48 MiB): such a one travels alone.
        while buffers.graphs and (taken + buffers.graphs[0][1] <= limits.batch_bytes or not (taken or scalars)):
            graph_row, size = buffers.graphs.popleft()
            graphs.append(graph_row)
            taken += size
        chunks: list[EmbeddingChunk] = []
        finished: EmbeddingJob | None = None
        if buffers.embeddings and taken < limits.batch_bytes:  # one chunk of the oldest embedding
            job = buffers.embeddings[0]
            rows = min(job.chunk_rows, job.rows - job.next_row)
            chunks.append((job, job.next_row, rows))
            job.next_row += rows
            if job.counted:
                taken += rows * job.row_bytes
            if job.next_row >= job.rows:
                buffers.embeddings.popleft()
                finished = job
        media: dict[str, list[MediaRow]] = {}
        for name, waiting in buffers.media.items():
            # one may be larger than batch_bytes (up to 48 MiB, checked at the call): such a one travels alone
            while waiting and (taken + waiting[0][1] <= limits.batch_bytes or not (taken or scalars)):
                media_row, size = waiting.popleft()
                media.setdefault(name, []).append(media_row)
                taken += size
        visdom: list[VisdomCallSource] = []
        while buffers.visdom and taken < limits.batch_bytes and len(visdom) < MAX_VISDOM_CALLS:
            call, size = buffers.visdom.popleft()
            visdom.append(call)
            taken += size
        tag_info = [buffers.tag_info.popleft() for _ in range(len(buffers.tag_info))]
        layouts = [buffers.layouts.popleft() for _ in range(len(buffers.layouts))]
        buffers.bytes_out += taken
        seq = self._next_seq
        self._next_seq += 1
        batch = encode_batch(
            self._run_id, self._rank, self._writer_id, seq, scalars, histograms, images, texts, graphs, chunks,
            media, tag_info, layouts[-1] if layouts else "", encode_visdom_calls(visdom),
        )  # fmt: skip
        if finished is not None:  # encoded: the caller may change its matrix now
            finished.done.set()
        return batch

    def _pump(self) -> None:
        """Make sure a stream is open and every unacknowledged batch has been put on it."""
        if self._mode is SenderMode.OFFLINE:
            return
        if self._stream is None or not self._stream.alive:
            if self._clock() < self._retry_at:
                return
            if self._open_request is not None and self._opened_on != self._transport.server and not self._open_run():
                return
            with self._cond:
                if not self._unacked:
                    return
            self._stream = WriteStream(self._transport, self._on_ack, self._on_stream_end)
        stream = self._stream
        with self._cond:
            to_send = [b for seq, b in self._unacked.items() if seq > stream.sent_upto]
        for batch in to_send:
            stream.send(batch.message)
            stream.sent_upto = batch.seq

    def _open_run(self) -> bool:
        """Open the run on the transport's server before sending its batches there: the server was not
        reachable at init(), or the transport has moved to another address since."""
        request = self._open_request
        assert request is not None, "no request to open the run with"
        server = self._transport.server
        try:
            self._transport.open_run(request, timeout=10.0)
        except TransportError as exc:
            self._last_error = str(exc)
            if not exc.unreachable:
                logger.error("runstream: the server refused to open run %s: %s", request.run_id, self._last_error)
                self._backoff = self._limits.backoff_max
            delay = self._backoff * (0.5 + random.random())
            self._backoff = min(self._backoff * 2, self._limits.backoff_max)
            self._retry_at = self._clock() + delay
            return False
        self._opened_on = server
        if self._mode is SenderMode.UNOPENED:
            self._enter(SenderMode.DISCONNECTED, "the run is open on the server; no stream acknowledged yet")
            logger.warning("runstream: the server is reachable; run %s is open there now", request.run_id)
        else:
            logger.warning("runstream: run %s is open on %s now; its batches go there", request.run_id, server)
        return True

    def _on_ack(self, ack: pb.WriteAck) -> None:
        with self._cond:
            batch = self._unacked.pop(ack.seq, None)
            if batch is not None:
                self.acked_batches += 1
                self.acked_points += batch.points
            if self._mode is not SenderMode.CONNECTED:
                self._enter(SenderMode.CONNECTED, f"batch {ack.seq} acknowledged")
            if ack.seq > self._acked_upto:
                self._acked_upto = ack.seq
            self._backoff = self._limits.backoff_initial
            self._cond.notify_all()
        self._wake.set()

    def _on_stream_end(self, stream: WriteStream, error: TransportError | None) -> None:
        if error is None:
            return
        self._last_error = str(error)
        if error.code == "INVALID_ARGUMENT":
            self._drop_rejected(error)
            self._retry_at = 0.0
        elif error.code == "CANCELLED" and self._close_deadline is not None:
            return
        else:
            # new batches go to the spool until the server acknowledges again
            self._enter(SenderMode.DISCONNECTED, f"the stream ended: {error}")
            delay = self._backoff * (0.5 + random.random())
            self._backoff = min(self._backoff * 2, self._limits.backoff_max)
            hint = error.retry_after if error.code == "RESOURCE_EXHAUSTED" else None
            if hint is not None:  # an overloaded server said when to come back: that, not our backoff
                delay = hint
            self._retry_at = self._clock() + delay
            logger.debug("runstream: stream ended (%s); retrying in %.2fs", self._last_error, delay)
        self._wake.set()

    def _drop_rejected(self, error: TransportError) -> None:
        with self._cond:
            seq = error.rejected_seq or next(iter(self._unacked), 0)
            batch = self._unacked.pop(seq, None)
            self._acked_upto = max(self._acked_upto, seq)  # rejected for good: no replay from the spool
            self._rejected += 1
            self._cond.notify_all()
        lost = batch.points if batch else 0
        logger.error("runstream: the server rejected batch %d (%d points): %s", seq, lost, error.details)
