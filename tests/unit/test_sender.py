"""The sender's logic against a fake server, in-process: one test per scenario.

`FakeServer` implements the SDK's `Transport` seam: it commits batches idempotently by seq, and a test
can take it down, make it slow (take batches, acknowledge none), busy (RESOURCE_EXHAUSTED with a retry
hint) or make it reject a batch. `FakeClock` moves a little every time it is read, so the sender's
schedule (backoff, retry hints, `close`'s deadline) runs in fake seconds and no test sleeps. The
real-server versions of these scenarios are in tests/integration (test_spool, test_resilience,
test_retry_hint).
"""

from __future__ import annotations

import logging
import re
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runstream._run import Run
from runstream._sender import Buffers, Sender, SenderLimits, SenderMode
from runstream._settings import resolve
from runstream._spool import Spool, spool_path
from runstream._transport import REJECTED_SEQ_KEY, RETRY_AFTER_KEY, AckStream, Transport, TransportError
from runstream.v1 import ingest_pb2 as pb

RUN_ID, WRITER_ID = "run1", "writer1"
TAGS = ("loss", "acc", "lr")
PACK = struct.Struct("<3d").pack


class FakeClock:
    """Advances `step` fake seconds on every read: the sender's waits pass without real time passing."""

    def __init__(self, step: float = 0.01) -> None:
        self.now = 1000.0
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self.step
            return self.now


class FakeServer(Transport):
    """An in-process Ingest service that commits each (writer, seq) once, in the order it gets them."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.cond = threading.Condition()
        self.up = True
        self.slow = False  # take batches, acknowledge none
        self.busy_for: float | None = None  # end the next stream at once: RESOURCE_EXHAUSTED, retry after this
        self.reject: set[int] = set()  # seqs refused with INVALID_ARGUMENT
        self.committed: dict[int, int] = {}  # seq -> points
        self.commit_order: list[int] = []  # every seq acknowledged, duplicates included
        self.opened_runs: list[str] = []
        self.finished_runs: list[tuple[str, str]] = []
        self.streams_at: list[float] = []  # clock time of every Write call
        self.errors_at: list[tuple[str, float]] = []  # code and clock time of every stream ended by an error
        self.calls = 0
        self.address = "fake"  # what the transport says it talks to; a failover changes it
        self.knows_run = {"fake"}  # the addresses where the run is open (init() opened it on "fake")

    @property
    def server(self) -> str:
        return self.address

    def set(self, **state: object) -> None:
        with self.cond:
            for key, value in state.items():
                setattr(self, key, value)
            self.cond.notify_all()

    def open_run(self, request: pb.OpenRunRequest, timeout: float, wait_for_ready: bool = False) -> pb.OpenRunResponse:
        with self.cond:
            self.calls += 1
            if not self.up:
                raise TransportError("UNAVAILABLE", "connection refused")
            self.opened_runs.append(request.run_id)
            self.knows_run.add(self.address)
        return pb.OpenRunResponse(run_id=request.run_id, created=True)

    def write(self, requests: Iterator[pb.Batch]) -> AckStream:
        with self.cond:
            self.calls += 1
        return _FakeStream(self, requests)

    def finish_run(self, request: pb.FinishRunRequest, timeout: float) -> None:
        with self.cond:
            self.calls += 1
            if not self.up:
                raise TransportError("UNAVAILABLE", "connection refused")
            self.finished_runs.append((request.run_id, request.status))

    def close(self) -> None:
        pass

    def fail(self, code: str, details: str, trailing: dict[str, str] | None = None) -> TransportError:
        self.errors_at.append((code, self.clock.now))
        return TransportError(code, details, trailing)

    @property
    def points(self) -> int:
        with self.cond:
            return sum(self.committed.values())


class _FakeStream:
    """One Write call: a thread takes the requests as gRPC would; iterating commits them and yields acks."""

    def __init__(self, server: FakeServer, requests: Iterator[pb.Batch]) -> None:
        self._server = server
        self._requests = requests
        self._inbox: deque[pb.Batch] = deque()
        self._ended = False
        self._cancelled = False
        threading.Thread(target=self._take_requests, daemon=True).start()

    def _take_requests(self) -> None:
        for batch in self._requests:
            with self._server.cond:
                self._inbox.append(batch)
                self._server.cond.notify_all()
        with self._server.cond:
            self._ended = True
            self._server.cond.notify_all()

    def cancel(self) -> None:
        with self._server.cond:
            self._cancelled = True
            self._server.cond.notify_all()

    def __iter__(self) -> Iterator[pb.WriteAck]:
        server = self._server
        with server.cond:
            server.streams_at.append(server.clock.now)
            if server.busy_for is not None:
                hint, server.busy_for = server.busy_for, None
                raise server.fail("RESOURCE_EXHAUSTED", "the writer is behind", {RETRY_AFTER_KEY: str(hint)})
        while True:
            with server.cond:
                while True:
                    if self._cancelled:
                        raise server.fail("CANCELLED", "cancelled by the client")
                    if not server.up:
                        raise server.fail("UNAVAILABLE", "the server went away")
                    if self._inbox and not server.slow:
                        break
                    if self._ended and not self._inbox:
                        return
                    server.cond.wait()
                batch = self._inbox.popleft()
                if batch.seq in server.reject or server.address not in server.knows_run:
                    raise server.fail("INVALID_ARGUMENT", "bad batch", {REJECTED_SEQ_KEY: str(batch.seq)})
                duplicate = batch.seq in server.committed
                server.committed[batch.seq] = len(batch.scalars.value) // 8
                server.commit_order.append(batch.seq)
            yield pb.WriteAck(writer_id=batch.writer_id, seq=batch.seq, duplicate=duplicate)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll a condition (a bound on a hang, not a timing the test depends on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


LIMITS = SenderLimits(
    flush_interval=0.002, batch_points=300, max_unacked=4, backoff_initial=0.1, backoff_max=0.4, spill_points=1_500
)


class Harness:
    """A started sender on a fake server and a fake clock, its buffers, and a spool under tmp_path."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        up: bool = True,
        limits: SenderLimits = LIMITS,
        unopened: bool = False,
        offline: bool = False,
        budget: int = 1 << 30,
        policy: str = "block",
    ) -> None:
        self.clock = FakeClock()
        self.server = FakeServer(self.clock)
        self.server.up = up
        self.buffers = Buffers()
        self.step = 0
        self.spool_dir = spool_path(tmp_path, RUN_ID, WRITER_ID)
        header = {"run_id": RUN_ID, "writer_id": WRITER_ID, "rank": 0}

        def make_spool() -> Spool:
            return Spool.create(self.spool_dir, header, budget, policy)

        self.sender = Sender(
            self.server, RUN_ID, 0, WRITER_ID, self.buffers, limits,
            spool=make_spool() if offline else None, spool_factory=None if offline else make_spool,
            open_request=pb.OpenRunRequest(project="p", run_id=RUN_ID), opened=not unopened, offline=offline,
            clock=self.clock,
        )  # fmt: skip
        self.sender.start()

    def log(self, calls: int) -> int:
        """Log `calls` rows of len(TAGS) points at once (one deque.extend: the sender sees all or none, so
        batches are cut the same way every time); returns the points."""
        rows = [(step, 0.0, TAGS, PACK(step, 0.5, 0.1)) for step in range(self.step, self.step + calls)]
        self.step += calls
        self.buffers.scalars.extend(rows)
        self.sender.wake()
        return calls * len(TAGS)

    def spooled(self) -> int:
        spool = self.sender.spool
        return len(spool) if spool is not None else 0


def test_connected_run_delivers_every_point_once_in_seq_order(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    points = h.log(2_000)
    assert h.sender.flush(20)
    report = h.sender.close(5, status="finished")
    assert report.complete and report.spool_dir == "", report
    assert h.server.points == points
    assert h.server.commit_order == sorted(h.server.committed) == list(range(1, len(h.server.committed) + 1))
    assert h.sender.mode is SenderMode.CONNECTED
    assert not h.spool_dir.exists()


def test_outage_then_reconnect_resends_unacked_in_order(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.server.set(slow=True)  # batches reach the server, no ack comes back: they stay unacknowledged
    points = h.log(600)
    wait_until(lambda: h.sender._stream is not None and h.sender._stream.sent_upto >= 2, "two batches are in flight")
    h.server.set(up=False)
    wait_until(lambda: h.sender.mode is SenderMode.DISCONNECTED, "the sender saw the outage")
    points += h.log(900)  # made during the outage: to the spool, behind the unacknowledged ones
    wait_until(lambda: h.sender._buffers.empty() and h.sender._held is None, "the outage's batches are made")
    assert h.spooled() >= 2  # the window is on disk too, with what came after it
    assert h.server.committed == {}
    h.server.set(up=True, slow=False)
    assert h.sender.flush(20)
    assert h.sender.mode is SenderMode.CONNECTED
    assert h.server.points == points
    assert h.server.commit_order == list(range(1, h.sender._next_seq))  # each once, in seq order
    assert len(h.server.streams_at) >= 2
    assert h.sender.close(5).complete


def test_outage_reconnects_within_the_backoff_when_no_hint_is_given(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.log(10)
    assert h.sender.flush(20)
    h.server.set(up=False)
    wait_until(lambda: h.sender.mode is SenderMode.DISCONNECTED, "the sender saw the outage")
    h.log(10)
    wait_until(lambda: len(h.server.streams_at) >= 4, "the sender retried a few times")
    h.server.set(up=True)
    assert h.sender.flush(20)
    gaps = [b - a for a, b in zip(h.server.streams_at[1:], h.server.streams_at[2:])]
    assert gaps and max(gaps) <= LIMITS.backoff_max * 1.5 + 0.2, gaps  # jittered, capped exponential backoff
    h.sender.close(5)


def test_retry_after_hint_is_obeyed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.server.set(busy_for=3.0)  # far longer than the backoff (0.05 to 0.15 s)
    points = h.log(100)
    assert h.sender.flush(20)
    (code, refused_at), *_ = h.server.errors_at
    assert code == "RESOURCE_EXHAUSTED"
    next_stream = h.server.streams_at[1]
    assert 3.0 <= next_stream - refused_at < 3.5  # waited as told, then came back at once
    assert h.server.points == points
    h.sender.close(5)


def test_retry_after_hint_is_capped_at_a_minute(tmp_path: Path) -> None:
    h = Harness(tmp_path, limits=LIMITS)
    h.clock.step = 0.5  # a minute of fake time in a few hundred reads
    h.server.set(busy_for=3600.0)
    h.log(100)
    assert h.sender.flush(30)
    (_, refused_at), *_ = h.server.errors_at
    assert 60.0 <= h.server.streams_at[1] - refused_at < 70.0
    h.sender.close(5)


def test_slow_server_spills_to_spool(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.server.set(slow=True)
    points = h.log(400)  # fills the window: 4 batches of 300 points
    wait_until(lambda: len(h.sender._unacked) == LIMITS.max_unacked, "the window is full")
    assert h.spooled() == 0  # a full window alone does not spill...
    points += h.log(1_000)  # ...but the window full and spill_points waiting does
    wait_until(lambda: h.spooled() > 0, "batches spilled to the spool")
    assert h.sender.mode is SenderMode.CONNECTED  # slow is not away
    h.server.set(slow=False)
    assert h.sender.flush(20)
    assert h.server.points == points
    assert h.server.commit_order == list(range(1, h.sender._next_seq))
    assert h.sender.close(5).complete
    assert not h.spool_dir.exists()  # acknowledged: segments and directory removed


def test_finish_timeout_spools_unacked_batches(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.server.set(slow=True)
    points = h.log(1_000)
    wait_until(lambda: len(h.sender._unacked) == LIMITS.max_unacked, "the window is full")
    report = h.sender.close(2.0, status="finished")  # 2 fake seconds: the server never acknowledges
    assert not report.complete
    assert report.spooled_points == report.unsent_points == points
    assert report.spooled_batches == report.unsent_batches
    assert report.lost_points == 0 and report.spool_dir == str(h.spool_dir)
    spool = Spool.open(h.spool_dir, lock=False)
    assert spool.pending() == list(range(1, report.spooled_batches + 1))
    assert spool.finish_record() is not None and spool.finish_record()["status"] == "finished"  # type: ignore[index]
    spool.close()


def test_rejected_batch_is_dropped_and_others_kept(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.server.set(reject={2})
    points = h.log(400)  # four batches of 300 points
    assert h.sender.flush(20)
    report = h.sender.close(5)
    assert report.rejected_batches == 1
    assert sorted(h.server.committed) == [1, 3, 4]
    assert h.server.points == points - 300
    assert h.sender.mode is SenderMode.CONNECTED  # a refused batch is not an outage


def test_server_away_at_init_opens_the_run_later(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="runstream")
    h = Harness(tmp_path, up=False, unopened=True)
    points = h.log(300)
    wait_until(lambda: h.spooled() == 3, "the batches are spooled")
    assert h.sender.mode is SenderMode.UNOPENED and h.server.opened_runs == []
    h.server.set(up=True)
    assert h.sender.flush(20)
    assert h.server.opened_runs == [RUN_ID]
    assert h.sender.mode is SenderMode.CONNECTED
    transitions = [re.findall(r"(\w+ -> \w+) \(", r.getMessage()) for r in caplog.records]
    assert [t for found in transitions for t in found] == ["UNOPENED -> DISCONNECTED", "DISCONNECTED -> CONNECTED"]
    assert h.server.points == points
    assert h.sender.close(5).complete


def test_a_failover_to_another_address_opens_the_run_there_first(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    points = h.log(300)
    assert h.sender.flush(20)
    assert h.server.opened_runs == []  # init() opened it on "fake"
    h.server.set(up=False)  # the server goes away; the transport moves to the next address
    points += h.log(300)
    wait_until(lambda: h.spooled() > 0, "the batches are spooled")
    h.server.set(up=True, address="other")
    assert h.sender.flush(20)
    assert h.server.opened_runs == [RUN_ID]  # opened on "other" before its first batch
    assert h.server.points == points
    assert h.sender.close(5).complete


def test_offline_sender_never_calls_the_server(tmp_path: Path) -> None:
    h = Harness(tmp_path, offline=True)
    points = h.log(900)
    assert h.sender.flush(20)  # offline: drained once everything is in the spool
    report = h.sender.close(5, status="finished")
    assert h.server.calls == 0
    assert report.spooled_points == points and report.lost_points == 0
    assert h.sender.mode is SenderMode.OFFLINE


def _run_on(server: FakeServer, tmp_path: Path, budget: int, policy: str, max_points: int) -> Run:
    settings = resolve(
        {"server": "fake", "dir": str(tmp_path / "spool"), "spool_max_bytes": budget, "spool_policy": policy}
    )
    return Run._open(settings, "r", "{}", 1.0, max_points, 1 << 30, transport=server)


def test_spool_budget_block_holds_and_log_waits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(FakeClock())
    server.set(slow=True)  # reachable, never acknowledging: the window fills, then the spool, then memory
    run = _run_on(server, tmp_path, budget=20_000, policy="block", max_points=8_192)
    logged = threading.Event()

    def train() -> None:  # far more than the window, the spool and memory together hold
        for step in range(200_000):
            run.log({"loss": float(step)}, step=step)
        logged.set()

    with caplog.at_level(logging.WARNING, logger="runstream"):
        thread = threading.Thread(target=train, daemon=True)
        thread.start()
        wait_until(lambda: run._waiting_warned, "log() waits for room")
        wait_until(lambda: run._sender._held is not None, "a batch waits in memory for room in the spool")
        assert not logged.is_set()
        assert any("policy block" in r.getMessage() for r in caplog.records)  # the spool's budget is full
        assert run._sender._dropped_points == 0
        server.set(slow=False)
        assert logged.wait(30)
    report = run.finish(timeout=30)
    assert report.complete and report.dropped_points == 0, report
    assert server.points == 200_000
    assert sorted(server.committed) == list(range(1, len(server.committed) + 1))


class FailingOverServer(FakeServer):
    """Its first FinishRun finds the server gone, and the transport moves to another address (as
    GrpcTransport does with several)."""

    def finish_run(self, request: pb.FinishRunRequest, timeout: float) -> None:
        if self.address == "fake":
            self.address = "other"
            raise TransportError("UNAVAILABLE", "connection refused")
        super().finish_run(request, timeout)


def test_a_finish_that_fails_over_opens_the_run_on_the_next_server_and_finishes_it(tmp_path: Path) -> None:
    server = FailingOverServer(FakeClock())
    run = _run_on(server, tmp_path, budget=1 << 30, policy="block", max_points=8_192)
    opened_at_init = list(server.opened_runs)
    run.log({"loss": 1.0}, step=0)
    assert run.finish(timeout=30).complete
    assert server.opened_runs == [*opened_at_init, run.id]  # opened again on "other", then finished there
    assert server.finished_runs == [(run.id, "finished")]


def test_spool_budget_drop_counts_dropped_points(tmp_path: Path) -> None:
    server = FakeServer(FakeClock())
    server.set(up=False)  # away at init: every batch goes to the spool, whose budget is small
    run = _run_on(server, tmp_path, budget=20_000, policy="drop", max_points=2_000_000)
    for step in range(40_000):
        run.log({"loss": float(step)}, step=step)
    report = run.finish(timeout=0.3)
    assert report.dropped_points > 0
    assert report.spooled_points + report.dropped_points == 40_000, report
    assert report.lost_points == report.dropped_points
    assert server.points == 0
