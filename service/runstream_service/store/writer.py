"""The single writer: one thread owns every DuckDB write.

Jobs arrive from the event loop through a bounded queue (bounded in points, so
memory is bounded and slow commits push back on the gRPC streams). The thread
coalesces whatever is queued into one transaction with one INSERT ... SELECT
per table, commits, and only then completes the jobs' futures, so an ack never
leaves before its data is durable. The highest committed seq of every writer
is recorded in the same transaction as the data: replays are skipped.

What a commit writes, and how, is the store's (store/base.py: the Store interface; store/file.py:
the DuckDB file); this module owns only the thread, the queue and the acknowledgements.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from runstream_service.store.base import FinishRun, OpenRun, RunDeleted, RunsSnapshot, Store, Transaction, UnknownRun
from runstream_service.store.file import FileStore
from runstream_service.store.lifecycle import deleted_message
from runstream_service.validate import DecodedBatch

__all__ = ["FinishRun", "OpenRun", "StoreWriter", "Transaction", "UnknownRun", "WriterStats"]

logger = logging.getLogger("runstream.writer")

MAX_GROUP_POINTS = 2_000_000
MAX_GROUP_JOBS = 512


@dataclass
class _Job:
    payload: DecodedBatch | OpenRun | FinishRun | Transaction
    future: asyncio.Future[Any]
    points: int


COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class WriterStats:
    """Counters for /metrics and /healthz; written by the writer thread only."""

    batches: int = 0
    points: int = 0
    duplicates: int = 0
    commits: int = 0
    commit_seconds_sum: float = 0.0
    commit_seconds_buckets: list[int] = field(default_factory=lambda: [0] * len(COMMIT_SECONDS_BUCKETS))
    commit_number: int = 0  # increases with every commit that changed something
    run_commits: dict[str, int] = field(default_factory=dict)  # run id -> commit_number of its last change

    def record_commit(self, seconds: float, run_ids: set[str]) -> None:
        self.commits += 1
        self.commit_seconds_sum += seconds
        for i, bound in enumerate(COMMIT_SECONDS_BUCKETS):
            if seconds <= bound:
                self.commit_seconds_buckets[i] += 1
                break
        self.mark_changed(run_ids)

    def mark_changed(self, run_ids: set[str]) -> None:
        self.commit_number += 1
        for run_id in run_ids:
            self.run_commits[run_id] = self.commit_number

    def runs_changed_since(self, commit_number: int) -> list[str]:
        return [run for run, number in list(self.run_commits.items()) if number > commit_number]


class StoreWriter:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        max_queued_points: int = 8_000_000,
        slow_down_us_per_point: float = 0.0,
        store: Store | None = None,
    ) -> None:
        self._store: Store = store if store is not None else FileStore(con)  # a lake server passes its own
        self._max_queued_points = max_queued_points
        # A testing knob (serve --test-slow-writer-us): an artificially slow disk, to show backpressure.
        self._slow_down = slow_down_us_per_point * 1e-6
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._queued_points = 0
        self._room: asyncio.Event | None = None  # set whenever queued points are released
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="runstream-writer", daemon=True)
        self.stats = WriterStats()
        # Told how many scalar points each commit added to scalar_points_hot (the compactor listens).
        self.on_scalars_committed: Callable[[int], None] | None = None

    # -- the event loop's side -------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._room = asyncio.Event()
        self._thread.start()

    @property
    def runs(self) -> RunsSnapshot:
        """The committed runs and their projects: an immutable snapshot, safe to read on the event loop."""
        return self._store.runs

    @property
    def queued_points(self) -> int:
        return self._queued_points

    async def submit(self, payload: DecodedBatch | OpenRun | FinishRun | Transaction) -> Any:
        """Queue a job (waiting while the queue is full) and return its result once committed."""
        return await (await self.enqueue(payload))

    async def enqueue(self, payload: DecodedBatch | OpenRun | FinishRun | Transaction) -> asyncio.Future[Any]:
        """Queue a job, waiting while the queue is full; the future completes after its commit."""
        assert self._loop is not None and self._room is not None, "call start() first"
        points = payload.points if isinstance(payload, DecodedBatch) else 0
        # A batch bigger than the whole budget still goes through, alone.
        while self._queued_points and self._queued_points + points > self._max_queued_points:
            self._room.clear()
            await self._room.wait()
        self._queued_points += points
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put(_Job(payload, future, points))
        return future

    def stop(self, timeout: float | None = None) -> None:
        """Commit everything queued, then stop the thread and checkpoint the database."""
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the writer thread -------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                break
            group = [job]
            points = job.points
            while len(group) < MAX_GROUP_JOBS and points < MAX_GROUP_POINTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
                points += more.points
            self._process(group)
        self._store.close()

    def _process(self, group: list[_Job]) -> None:
        batches: list[_Job] = []
        for job in group:
            if isinstance(job.payload, DecodedBatch):
                batches.append(job)
                continue
            self._commit_batches(batches)
            batches = []
            self._run_control(job)
        self._commit_batches(batches)

    def _run_control(self, job: _Job) -> None:
        payload = job.payload
        if isinstance(payload, Transaction):
            try:
                result: Any = self._store.transact(payload)
            except Exception as exc:
                if payload.on_rollback is not None:
                    payload.on_rollback()
                self._complete([job], exc=exc)
                return
            self._complete([job], results=[result])
            return
        try:
            if isinstance(payload, OpenRun):
                result = self._store.open_run(payload)
            else:
                assert isinstance(payload, FinishRun)
                self._store.finish_run(payload)
                result = None
        except Exception as exc:
            self._complete([job], exc=exc)
            return
        self.stats.mark_changed({payload.run_id})
        self._complete([job], results=[result])

    def _commit_batches(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        started = time.perf_counter()
        if self._slow_down:
            time.sleep(self._slow_down * sum(job.points for job in jobs))
        try:
            duplicates, fresh, progress = self._sort_out(jobs)
            if fresh:
                self._store.append(fresh, progress)
        except Exception as exc:
            if len(jobs) == 1:
                logger.exception(
                    "committing batch %d of writer %s failed",
                    getattr(jobs[0].payload, "seq", 0),
                    getattr(jobs[0].payload, "writer_id", "?"),
                )
                self._complete(jobs, exc=exc)
            else:  # find the culprit; the others still go in
                for job in jobs:
                    self._commit_batches([job])
            return
        scalar_points = sum(len(b.scalars.step) for b in fresh if b.scalars is not None)
        if scalar_points and self.on_scalars_committed is not None:
            self.on_scalars_committed(scalar_points)
        elapsed = time.perf_counter() - started
        stats = self.stats
        changed = {
            job.payload.run_id
            for job, dup in zip(jobs, duplicates)
            if not dup and isinstance(job.payload, DecodedBatch)
        }
        stats.record_commit(elapsed, changed)
        for job, duplicate in zip(jobs, duplicates):
            if duplicate:
                stats.duplicates += 1
            else:
                stats.batches += 1
                stats.points += job.points
        self._complete(jobs, results=duplicates)

    def _sort_out(self, jobs: list[_Job]) -> tuple[list[bool], list[DecodedBatch], dict[str, int]]:
        """Which jobs replay committed batches; the others' batches; each writer's new highest seq."""
        progress: dict[str, int] = {}
        duplicates: list[bool] = []
        fresh: list[DecodedBatch] = []
        runs = self._store.runs
        for job in jobs:
            batch = job.payload
            assert isinstance(batch, DecodedBatch)
            if batch.seq <= progress.get(batch.writer_id, self._store.committed_seq(batch.writer_id)):
                duplicates.append(True)
                continue
            if batch.run_id in runs.deleted:
                raise RunDeleted(f"run_id: {deleted_message(batch.run_id)}")
            if batch.run_id not in runs:
                raise UnknownRun(f"run_id: run {batch.run_id!r} is not open; call OpenRun first")
            duplicates.append(False)
            progress[batch.writer_id] = batch.seq
            fresh.append(batch)
        return duplicates, fresh, progress

    def _complete(self, jobs: list[_Job], results: list[Any] | None = None, exc: BaseException | None = None) -> None:
        assert self._loop is not None and self._room is not None
        released = sum(j.points for j in jobs)
        for i, job in enumerate(jobs):
            if exc is not None:
                self._call(_fail, job.future, exc)
            else:
                self._call(_succeed, job.future, results[i] if results else None)
        self._call(self._release, released)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody waits for these any more
            pass

    def _release(self, points: int) -> None:
        assert self._room is not None
        self._queued_points -= points
        self._room.set()


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
