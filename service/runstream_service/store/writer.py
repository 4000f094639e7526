"""The single writer: one thread owns every DuckDB write.

Jobs arrive from the event loop through a bounded queue (bounded in points, so
memory is bounded and slow commits push back on the gRPC streams). The thread
coalesces whatever is queued into one transaction with one INSERT ... SELECT
per table, commits, and only then completes the jobs' futures, so an ack never
leaves before its data is durable. The highest committed seq of every writer
is recorded in the same transaction as the data: replays are skipped.
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
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runstream_service.store.schema import create_schema
from runstream_service.store.transactions import insert_rows, rollback
from runstream_service.validate import DecodedBatch

logger = logging.getLogger("runstream.writer")

MAX_GROUP_POINTS = 2_000_000
MAX_GROUP_JOBS = 512


@dataclass(frozen=True)
class OpenRun:
    run_id: str
    project: str
    name: str
    config_json: str
    rank: int
    world_size: int
    host: str
    start_time: float


@dataclass(frozen=True)
class FinishRun:
    run_id: str
    rank: int
    status: str
    end_time: float


@dataclass
class _Job:
    payload: DecodedBatch | OpenRun | FinishRun
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


class UnknownRun(LookupError):
    pass


class StoreWriter:
    def __init__(
        self, con: duckdb.DuckDBPyConnection, max_queued_points: int = 8_000_000, slow_down_us_per_point: float = 0.0
    ) -> None:
        create_schema(con)
        self._con = con
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
        # Caches of small tables; the writer thread is their only writer.
        self._series: dict[tuple[str, str, str], int] = {
            (r, k, t): s for s, r, k, t in con.execute("SELECT series_id, run_id, kind, tag FROM series").fetchall()
        }
        self._next_series_id = max(self._series.values(), default=-1) + 1
        self._seqs: dict[str, int] = dict(con.execute("SELECT writer_id, seq FROM writer_progress").fetchall())
        self._stats_known: set[int] = {s for (s,) in con.execute("SELECT series_id FROM series_stats").fetchall()}
        self._stats_pending: set[int] = set()  # series given a stats row in the open transaction
        self.known_runs: set[str] = {r for (r,) in con.execute("SELECT run_id FROM run_meta").fetchall()}
        # run id -> project, for the ingest side's `write:PROJECT` check (README "Security").
        self.run_projects: dict[str, str] = dict(con.execute("SELECT run_id, project FROM run_meta").fetchall())
        self._ranks: set[tuple[str, int]] = {
            (r, k) for r, k in con.execute("SELECT run_id, rank FROM run_ranks").fetchall()
        }

    # -- the event loop's side -------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._room = asyncio.Event()
        self._thread.start()

    @property
    def queued_points(self) -> int:
        return self._queued_points

    async def submit(self, payload: DecodedBatch | OpenRun | FinishRun) -> Any:
        """Queue a job (waiting while the queue is full) and return its result once committed."""
        return await (await self.enqueue(payload))

    async def enqueue(self, payload: DecodedBatch | OpenRun | FinishRun) -> asyncio.Future[Any]:
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
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:  # pragma: no cover - the WAL still holds the data
            logger.warning("checkpoint at shutdown failed (%s); the WAL is replayed at next start", exc)

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
        try:
            self._con.execute("BEGIN")
            if isinstance(job.payload, OpenRun):
                result: Any = self._open_run(job.payload)
            else:
                assert isinstance(job.payload, FinishRun)
                self._finish_run(job.payload)
                result = None
            self._con.execute("COMMIT")
        except Exception as exc:
            rollback(self._con)
            self._complete([job], exc=exc)
            return
        if isinstance(job.payload, OpenRun):
            self.known_runs.add(job.payload.run_id)
            if result or job.payload.rank == 0:  # created, or rank 0 rejoined (its project wins)
                self.run_projects[job.payload.run_id] = job.payload.project
            self._ranks.add((job.payload.run_id, job.payload.rank))
        self.stats.mark_changed({job.payload.run_id})
        self._complete([job], results=[result])

    def _commit_batches(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        started = time.perf_counter()
        if self._slow_down:
            time.sleep(self._slow_down * sum(job.points for job in jobs))
        try:
            results, new_series, seqs = self._write_batches(jobs)
        except Exception as exc:
            rollback(self._con)
            self._stats_pending.clear()
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
        self._series.update(new_series)
        self._next_series_id += len(new_series)
        self._seqs.update(seqs)
        self._stats_known |= self._stats_pending
        self._stats_pending.clear()
        elapsed = time.perf_counter() - started
        stats = self.stats
        changed = {job.payload.run_id for job, dup in zip(jobs, results) if not dup}
        stats.record_commit(elapsed, changed)
        for job, duplicate in zip(jobs, results):
            if duplicate:
                stats.duplicates += 1
            else:
                stats.batches += 1
                stats.points += job.points
        self._complete(jobs, results=results)

    def _write_batches(self, jobs: list[_Job]) -> tuple[list[bool], dict[tuple[str, str, str], int], dict[str, int]]:
        con = self._con
        new_series: dict[tuple[str, str, str], int] = {}
        seqs: dict[str, int] = {}
        duplicates: list[bool] = []
        scalar_parts: list[pa.Table] = []
        histogram_parts: list[dict[str, Any]] = []
        image_parts: list[dict[str, Any]] = []
        text_parts: list[pa.Table] = []

        def series_ids(batch: DecodedBatch, kind: str, tag_index: np.ndarray) -> np.ndarray:
            used = np.flatnonzero(np.bincount(tag_index, minlength=len(batch.tags)))  # no sort, unlike np.unique
            table = np.full(len(batch.tags), -1, dtype=np.int32)
            for i in used.tolist():
                key = (batch.run_id, kind, batch.tags[i])
                sid = self._series.get(key)
                if sid is None:
                    sid = new_series.get(key)
                    if sid is None:
                        sid = new_series[key] = self._next_series_id + len(new_series)
                table[i] = sid
            ids: np.ndarray = table[tag_index]
            return ids

        for job in jobs:
            batch = job.payload
            assert isinstance(batch, DecodedBatch)
            committed = seqs.get(batch.writer_id, self._seqs.get(batch.writer_id, 0))
            if batch.seq <= committed:
                duplicates.append(True)
                continue
            if batch.run_id not in self.known_runs:
                raise UnknownRun(f"run_id: run {batch.run_id!r} is not open; call OpenRun first")
            duplicates.append(False)
            seqs[batch.writer_id] = batch.seq
            rank = np.int32(batch.rank)
            if (s := batch.scalars) is not None and len(s.step):
                # Zero-copy views of the batch's columns; one INSERT takes them all as chunks.
                scalar_parts.append(
                    pa.table(
                        {
                            "series_id": series_ids(batch, "scalar", s.tag_index),
                            "step": s.step,
                            "rank": np.full(len(s.step), rank),
                            "wall_time": s.wall_time,
                            "value": s.value,
                        }
                    )
                )
            if (h := batch.histograms) is not None and len(h.step):
                histogram_parts.append({"series_id": series_ids(batch, "histogram", h.tag_index), "rank": rank, "h": h})
            if (im := batch.images) is not None and len(im.step):
                image_parts.append({"series_id": series_ids(batch, "image", im.tag_index), "rank": rank, "i": im})
            if (tx := batch.texts) is not None and len(tx.step):
                text_parts.append(
                    pa.table(
                        {
                            "series_id": series_ids(batch, "text", tx.tag_index),
                            "step": tx.step,
                            "rank": np.full(len(tx.step), rank),
                            "wall_time": tx.wall_time,
                            "text": pa.array(tx.text, pa.string()),
                        }
                    )
                )

        con.execute("BEGIN")
        if new_series:
            keys = list(new_series)
            insert_rows(
                self._con,
                "series",
                pa.table(
                    {
                        "series_id": pa.array(list(new_series.values()), pa.int32()),
                        "run_id": [k[0] for k in keys],
                        "kind": [k[1] for k in keys],
                        "tag": [k[2] for k in keys],
                    }
                ),
            )
        if scalar_parts:
            # In arrival order: the compactor sorts them by series and step (store/compactor.py).
            scalar_rows = pa.concat_tables(scalar_parts)
            insert_rows(self._con, "scalar_points_hot", scalar_rows)
            self._update_series_stats(scalar_rows)
        if histogram_parts:
            insert_rows(self._con, "histogram_points", _histogram_table(histogram_parts))
        if image_parts:
            insert_rows(self._con, "image_points", _image_table(image_parts))
        if text_parts:
            insert_rows(self._con, "text_points", pa.concat_tables(text_parts))
        if seqs:
            self._save_seqs(seqs)
        con.execute("COMMIT")
        if scalar_parts and self.on_scalars_committed is not None:
            self.on_scalars_committed(scalar_rows.num_rows)
        return duplicates, new_series, seqs

    def _update_series_stats(self, rows: pa.Table) -> None:
        """Fold this commit's points into series_stats (aggregated by DuckDB straight from the Arrow rows)."""
        self._con.register("committed_points", rows)
        try:
            stats = self._con.sql(
                "SELECT series_id, count(*) AS points, min(step) AS first_step, max(step) AS last_step, "
                "min(wall_time) AS first_wall, max(wall_time) AS last_wall FROM committed_points GROUP BY series_id"
            ).to_arrow_table()
        finally:
            self._con.unregister("committed_points")
        ids = stats.column("series_id").to_pylist()
        known = pa.array([i in self._stats_known for i in ids])
        if (new := stats.filter(pc.invert(known))).num_rows:
            insert_rows(self._con, "series_stats", new)
        if (old := stats.filter(known)).num_rows:
            self._con.register("stats_updates", old)
            try:
                self._con.execute(
                    """
                    UPDATE series_stats SET points = series_stats.points + u.points,
                        first_step = least(series_stats.first_step, u.first_step),
                        last_step = greatest(series_stats.last_step, u.last_step),
                        first_wall = least(series_stats.first_wall, u.first_wall),
                        last_wall = greatest(series_stats.last_wall, u.last_wall)
                    FROM stats_updates u WHERE series_stats.series_id = u.series_id
                    """
                )
            finally:
                self._con.unregister("stats_updates")
        self._stats_pending.update(ids)

    def _save_seqs(self, seqs: dict[str, int]) -> None:
        known = [w for w in seqs if w in self._seqs]
        new = [w for w in seqs if w not in self._seqs]
        if new:
            insert_rows(
                self._con,
                "writer_progress",
                pa.table({"writer_id": new, "seq": pa.array([seqs[w] for w in new], pa.uint64())}),
            )
        if known:
            updates = pa.table({"writer_id": known, "seq": pa.array([seqs[w] for w in known], pa.uint64())})
            self._con.register("seq_updates", updates)
            try:
                self._con.execute(
                    "UPDATE writer_progress SET seq = u.seq FROM seq_updates u "
                    "WHERE writer_progress.writer_id = u.writer_id"
                )
            finally:
                self._con.unregister("seq_updates")

    def _open_run(self, req: OpenRun) -> bool:
        """Create the run (returns True) or join it; rank 0's name and config win."""
        con = self._con
        created = req.run_id not in self.known_runs
        if created:
            con.execute(
                "INSERT INTO run_meta VALUES (?, ?, ?, ?, 'running', ?, NULL, ?, ?)",
                [req.run_id, req.project, req.name, req.config_json, req.start_time, req.host, req.world_size],
            )
        elif req.rank == 0:
            con.execute(
                "UPDATE run_meta SET project = ?, name = ?, config = ?, host = ?, world_size = ?, status = 'running', "
                "finished_at = NULL WHERE run_id = ?",
                [req.project, req.name, req.config_json, req.host, req.world_size, req.run_id],
            )
        if (req.run_id, req.rank) in self._ranks:
            con.execute(
                "UPDATE run_ranks SET host = ?, started_at = ?, finished_at = NULL, status = 'running' "
                "WHERE run_id = ? AND rank = ?",
                [req.host, req.start_time, req.run_id, req.rank],
            )
        else:
            con.execute(
                "INSERT INTO run_ranks VALUES (?, ?, ?, ?, NULL, 'running')",
                [req.run_id, req.rank, req.host, req.start_time],
            )
        return created

    def _finish_run(self, req: FinishRun) -> None:
        if req.run_id not in self.known_runs:
            raise UnknownRun(f"run_id: run {req.run_id!r} is not open")
        self._con.execute(
            "UPDATE run_ranks SET finished_at = ?, status = ? WHERE run_id = ? AND rank = ?",
            [req.end_time, req.status, req.run_id, req.rank],
        )
        if req.rank == 0:
            self._con.execute(
                "UPDATE run_meta SET finished_at = ?, status = ? WHERE run_id = ?",
                [req.end_time, req.status, req.run_id],
            )

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


def _histogram_table(parts: list[dict[str, Any]]) -> pa.Table:
    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p["h"], name) for p in parts])

    def lists(values: str, offsets: str) -> pa.ListArray:
        offs, base = [], 0
        for i, p in enumerate(parts):
            o = getattr(p["h"], offsets)
            offs.append((o[:-1] if i < len(parts) - 1 else o) + base)
            base += int(o[-1])
        return pa.ListArray.from_arrays(pa.array(np.concatenate(offs).astype(np.int32)), pa.array(cat(values)))

    steps = cat("step")
    return pa.table(
        {
            "series_id": np.concatenate([p["series_id"] for p in parts]),
            "step": steps,
            "rank": np.concatenate([np.full(len(p["h"].step), p["rank"]) for p in parts]),
            "wall_time": cat("wall_time"),
            "count": cat("count"),
            "min": cat("min"),
            "max": cat("max"),
            "sum": cat("sum"),
            "sum_squares": cat("sum_squares"),
            "bucket_limits": lists("edges", "offsets_edges"),
            "bucket_counts": lists("counts", "offsets_counts"),
        }
    )


def _image_table(parts: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "series_id": np.concatenate([p["series_id"] for p in parts]),
            "step": np.concatenate([p["i"].step for p in parts]),
            "rank": np.concatenate([np.full(len(p["i"].step), p["rank"]) for p in parts]),
            "wall_time": np.concatenate([p["i"].wall_time for p in parts]),
            "width": np.concatenate([p["i"].width for p in parts]),
            "height": np.concatenate([p["i"].height for p in parts]),
            "mime": [m for p in parts for m in p["i"].mime],
            "data": pa.array([d for p in parts for d in p["i"].data], pa.binary()),
        }
    )
