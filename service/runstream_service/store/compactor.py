"""The compactor: a background thread that keeps scalar points clustered by series and step.

The writer appends to scalar_points_hot in arrival order (interleaved across runs, tags and
ranks). The compactor moves those points into scalar_points as a new *generation*, sorted by
(series_id, step, rank), and writes the generation's rollup tiers (store/rollups.py) into
scalar_rollups. Generations are merged size-tiered (FAN_IN of a similar size into one), so a
series lies in few sorted stretches and DuckDB's zone maps skip the rest of the table.

Both go in steps of a range of series of about CHUNK_POINTS points, each its own transaction
(Move): the range's points leave the hot table (or the merged generations) and arrive in the new
generation with their rollups in one commit, so a reader's snapshot sees every point exactly once,
and no transaction grows with the database (a merge of 86M points in one transaction grew the
process by 44 MB per million points). A merge stopped between steps (a restart, a conflict with
a run's deletion) leaves a consistent store: a partly filled new generation beside what is left of
the old ones, merged again later like any other.

The compactor has its own cursor and never blocks the writer: DuckDB lets the writer append to
the hot table while the compactor deletes the rows its snapshot saw.

Compacting costs about twice the CPU of ingesting a point, so during an ingest burst (see
CompactionPolicy) it waits, before a compaction or merge and between chunks, and catches up
when the burst is over; reads see the waiting points in the hot table meanwhile.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runstream_service.settings import CompactionPolicy
from runstream_service.store.rollups import all_levels
from runstream_service.store.transactions import insert_rows, rollback

logger = logging.getLogger("runstream.compactor")

FAN_IN = 4  # generations of one size class merged at once
CHUNK_POINTS = 2_000_000
COARSE_LEVEL = 8  # rollup levels from here on are written together per rewrite (CoarseRollups)
COARSE_ROWS = 1_000_000  # ... or whenever this many rows are gathered (about 100 MB)
POINT_COLUMNS = "series_id, step, rank, wall_time, value"


class Stopping(Exception):
    pass


@dataclass
class CompactorStats:
    """For /healthz and /metrics; written by the compactor thread only."""

    compactions: int = 0
    merges: int = 0
    points_compacted: int = 0
    points_merged: int = 0
    seconds: float = 0.0
    uncompacted_points: int = 0  # hot points at the last look
    generations: int = 0
    busy: bool = False
    deferred: int = 0  # times compaction waited for an ingest burst to end


def merge_candidates(sizes: dict[int, int], base: int) -> list[int]:
    """Generations to merge next: the FAN_IN oldest of the smallest size class that has FAN_IN.

    Size class c holds generations of base * FAN_IN**c .. base * FAN_IN**(c+1) points, so each
    point is rewritten about log_FAN_IN(total / base) times over its life.
    """
    classes: dict[int, list[int]] = {}
    for generation, points in sorted(sizes.items()):
        size_class = 0 if points <= base else int(math.log(points / base, FAN_IN))
        classes.setdefault(size_class, []).append(generation)
    for size_class in sorted(classes):
        if len(classes[size_class]) >= FAN_IN:
            return classes[size_class][:FAN_IN]
    return []


def chunks(counts: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Split (series_id, points) sorted by series into inclusive series ranges of about `limit` points."""
    ranges: list[tuple[int, int]] = []
    first, total = None, 0
    for series_id, points in counts:
        if first is None:
            first = series_id
        total += points
        if total >= limit:
            ranges.append((first, series_id))
            first, total = None, 0
    if first is not None:
        ranges.append((first, counts[-1][0]))
    return ranges


class Compactor:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        policy: CompactionPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,  # the compactor's only clock: bursts, and how long points wait
    ) -> None:
        self.policy = policy or CompactionPolicy()
        self._clock = clock
        self._cur = con.cursor()  # made on the thread that owns `con`
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runstream-compactor", daemon=True)
        self._last_compaction = clock()
        self._hot_since_wake = 0
        self.stats = CompactorStats()
        rows = self._cur.execute("SELECT generation, points FROM scalar_generations").fetchall()
        self._generations: dict[int, int] = dict(rows)
        self._next_generation = max(self._generations, default=0) + 1
        self.stats.generations = len(self._generations)
        self._lock = threading.Lock()  # notify() runs on the writer thread
        self._notified = 0
        self._recent: deque[tuple[float, int]] = deque()  # (time, points) of the last second's commits
        self._measure_hot()

    def start(self) -> None:
        self._thread.start()

    def notify(self, points: int) -> None:
        """The writer committed `points` hot points (called from the writer thread)."""
        now = self._clock()
        with self._lock:
            self._recent.append((now, points))
            while self._recent[0][0] < now - 1.0:
                self._recent.popleft()
            self._notified += points
            self.stats.uncompacted_points += points
            self._hot_since_wake += points
            due = self._hot_since_wake >= self.policy.hot_points
            if due:
                self._hot_since_wake = 0
        if due:
            self._wake.set()

    def _measure_hot(self) -> int:
        """Count the hot points; the figure for /healthz never misses a commit (it may overcount briefly)."""
        with self._lock:
            self._notified = 0
        (hot,) = self._cur.execute("SELECT count(*) FROM scalar_points_hot").fetchall()[0]
        with self._lock:
            self.stats.uncompacted_points = hot + self._notified
        return int(hot)

    def stop(self) -> None:
        """Stop soon: a compaction under way is interrupted and rolled back (its points stay hot)."""
        self._stopping.set()
        self._wake.set()
        self._cur.interrupt()
        self._thread.join()
        self._cur.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.policy.poll_seconds)
            self._wake.clear()
            try:
                self._step()
            except Exception as exc:  # keep serving: the points of the failed step stay where they were
                rollback(self._cur)
                try:
                    self._reload_generations()
                except duckdb.Error:
                    pass  # tried again after the next failure or success
                if not self._stopping.is_set():
                    logger.exception("compaction failed (%s); retrying later", exc)
                    self._stopping.wait(5.0)

    def in_burst(self) -> bool:
        """Ingestion is in a burst, and not so many points wait that compaction must go on anyway."""
        now = self._clock()
        with self._lock:
            recent = sum(points for at, points in self._recent if at >= now - 1.0)
            waiting = self.stats.uncompacted_points
        return recent > self.policy.burst_points_per_s and waiting < self.policy.burst_hot_points

    def _wait_for_burst_end(self) -> None:
        if self.in_burst():
            self.stats.deferred += 1
            while self.in_burst() and not self._stopping.is_set():
                self._stopping.wait(0.1)
        if self._stopping.is_set():
            raise Stopping("the server is stopping")  # rolled back by _run: the points stay hot

    def _step(self) -> None:
        """Compact the hot points when due, then do the merges that are due."""
        self._wait_for_burst_end()
        with self._lock:  # nothing was hot and nothing came since: no need to count (an idle server stays idle)
            idle = self._notified == 0 and self.stats.uncompacted_points == 0
        hot = 0 if idle else self._measure_hot()
        waited = self._clock() - self._last_compaction
        if hot and (hot >= self.policy.hot_points or waited >= self.policy.hot_seconds):
            self._timed(self._compact_hot)
        while not self._stopping.is_set() and (due := merge_candidates(self._generations, self.policy.hot_points)):
            self._wait_for_burst_end()
            self._timed(self._merge, due)

    def _timed(self, work: Callable[..., None], *args: Any) -> None:
        started = time.perf_counter()
        self.stats.busy = True
        try:
            work(*args)
        finally:
            self.stats.busy = False
            self.stats.seconds += time.perf_counter() - started

    def _compact_hot(self) -> None:
        """Move the hot points into a new generation, one transaction per chunk of series.

        The series of each step are chosen by counting again just before it: points keep arriving
        meanwhile, and a range planned from the first count grew to 8M points by its turn (8 series
        of a slice of runs that had just started)."""
        counts = self._hot_counts(None, None)
        final = counts[-1][0] if counts else -1  # series that appear later wait for the next compaction
        generation = self._next_generation
        moved = 0
        while counts:
            self._wait_for_burst_end()
            first, last = chunks(counts, CHUNK_POINTS)[0]
            moved += self._move_chunk(Move(generation, first, last), None)
            counts = self._hot_counts(last, final) if last < final else []
        self._last_compaction = self._clock()
        self.stats.compactions += 1
        self.stats.points_compacted += moved
        self._measure_hot()

    def _merge(self, generations: list[int]) -> None:
        """Rewrite `generations` as one, one transaction per chunk of series (see Move)."""
        listed = ", ".join(str(int(g)) for g in generations)
        counts = self._cur.execute(
            f"SELECT series_id, count(*) FROM scalar_points WHERE generation IN ({listed}) "
            "GROUP BY series_id ORDER BY series_id"
        ).fetchall()
        generation = self._next_generation
        self._next_generation += 1  # reserved: compactions between the steps take the next ones
        coarse = CoarseRollups()
        ranges = chunks(counts, CHUNK_POINTS) or [(0, -1)]  # no points left: one step drops the generations
        moved = 0
        for index, (first, last) in enumerate(ranges):
            self._wait_for_burst_end()
            if self._hot_overdue():  # a long merge must not let the hot table grow without bound
                self._compact_hot()
            moved += self._move_chunk(
                Move(generation, first, last, tuple(generations), index == len(ranges) - 1), coarse
            )
        self.stats.merges += 1
        self.stats.points_merged += moved

    def _hot_counts(self, after: int | None, last: int | None) -> list[tuple[int, int]]:
        """(series_id, hot points) in series order, of the series after `after` up to `last` (None: all)."""
        where = "" if after is None or last is None else f"WHERE series_id > {int(after)} AND series_id <= {int(last)}"
        rows = self._cur.execute(
            f"SELECT series_id, count(*) FROM scalar_points_hot {where} GROUP BY series_id ORDER BY series_id"
        ).fetchall()
        return [(int(series), int(points)) for series, points in rows]

    def _hot_overdue(self) -> bool:
        """So many points wait in the hot table that they are compacted even between a merge's steps."""
        with self._lock:
            return self.stats.uncompacted_points >= self.policy.burst_hot_points

    def _move_chunk(self, move: Move, coarse: CoarseRollups | None) -> int:
        """One committed step of a compaction (coarse is None: from the hot table) or of a merge.

        Each step commits the points of a range of series with their rollups, so no transaction
        grows with the database, and a reader sees every point of the range once either way.
        """
        cur = self._cur
        source = "scalar_points" if move.merged else "scalar_points_hot"
        where = move.where()
        cur.execute("BEGIN")
        rows = cur.sql(
            f"SELECT {POINT_COLUMNS}{', generation' if move.merged else ''} FROM {source} WHERE {where} "
            "ORDER BY series_id, step, rank"
        ).to_arrow_table()
        old: dict[int, int] = {}
        if move.merged and rows.num_rows:
            found, times = np.unique(rows.column("generation").to_numpy(), return_counts=True)
            old = {int(g): int(n) for g, n in zip(found, times, strict=True)}
            rows = rows.drop_columns(["generation"])
        if rows.num_rows:
            points = rows.append_column("generation", pa.array(np.full(rows.num_rows, move.generation, np.int32)))
            insert_rows(cur, "scalar_points", points)
            rollups = _rollup_rows(rows, move.generation)
            if coarse is None:
                insert_rows(cur, "scalar_rollups", rollups)  # level by level already
            else:
                is_coarse = pc.greater_equal(rollups.column("level"), COARSE_LEVEL)
                insert_rows(cur, "scalar_rollups", rollups.filter(pc.invert(is_coarse)))
                coarse.add(rollups.filter(is_coarse), move.first)
        cur.execute(f"DELETE FROM {source} WHERE {where}")  # only the rows this snapshot saw
        if move.merged:
            self._move_rollups(move, coarse)
        self._count(move, rows.num_rows, old)
        cur.execute("COMMIT")
        self._counted(move, rows.num_rows, old)
        return int(rows.num_rows)

    def _move_rollups(self, move: Move, coarse: CoarseRollups | None) -> None:
        """A merge's rollups of the range: fine levels replaced now; coarse levels gathered over chunks.

        Until the gathered coarse rows are written, the merged generations' own coarse rows of the
        moved series stand in for them, relabelled as the new generation: so a merge stopped between
        chunks leaves each point counted once at every level, whatever is merged later.
        """
        cur = self._cur
        where = f"{move.where()} AND level"
        cur.execute(f"DELETE FROM scalar_rollups WHERE {where} < {COARSE_LEVEL}")
        cur.execute(f"UPDATE scalar_rollups SET generation = {move.generation} WHERE {where} >= {COARSE_LEVEL}")
        if coarse is None or coarse.first is None or not (move.last_chunk or coarse.rows >= COARSE_ROWS):
            return
        first = coarse.first
        own = f"generation = {move.generation} AND series_id BETWEEN {first} AND {move.last}"
        cur.execute(f"DELETE FROM scalar_rollups WHERE {own} AND level >= {COARSE_LEVEL}")
        gathered = coarse.take()
        if gathered.num_rows:  # of series that still exist (a run deleted meanwhile took its series rows)
            cur.register("coarse_rows", gathered)
            try:
                cur.execute(
                    "INSERT INTO scalar_rollups SELECT * FROM coarse_rows WHERE series_id IN "
                    f"(SELECT series_id FROM series WHERE series_id BETWEEN {first} AND {move.last})"
                )
            finally:
                cur.unregister("coarse_rows")

    def _count(self, move: Move, points: int, old: dict[int, int]) -> None:
        """scalar_generations in the step's transaction: the new generation's points, the merged ones'."""
        cur = self._cur
        if points and move.generation in self._generations:
            cur.execute(
                "UPDATE scalar_generations SET points = points + ? WHERE generation = ?", [points, move.generation]
            )
        elif points:
            cur.execute("INSERT INTO scalar_generations VALUES (?, ?, ?)", [move.generation, points, time.time()])
        for generation, gone in old.items():
            cur.execute("UPDATE scalar_generations SET points = points - ? WHERE generation = ?", [gone, generation])
        if move.last_chunk:
            listed = ", ".join(str(g) for g in move.merged)
            cur.execute(f"DELETE FROM scalar_generations WHERE generation IN ({listed})")

    def _counted(self, move: Move, points: int, old: dict[int, int]) -> None:
        """The committed step, in the compactor's own sizes of the generations."""
        if points:
            self._generations[move.generation] = self._generations.get(move.generation, 0) + points
            self._next_generation = max(self._next_generation, move.generation + 1)
        for generation, gone in old.items():
            if generation in self._generations:
                self._generations[generation] -= gone
        if move.last_chunk:
            for generation in move.merged:
                self._generations.pop(generation, None)
        self.stats.generations = len(self._generations)

    def _reload_generations(self) -> None:
        """After a failed step: the sizes as committed (a merge may have stopped between chunks)."""
        rows = self._cur.execute("SELECT generation, points FROM scalar_generations").fetchall()
        self._generations = dict(rows)
        self._next_generation = max(self._next_generation, max(self._generations, default=0) + 1)
        self.stats.generations = len(self._generations)


@dataclass(frozen=True)
class Move:
    """One step: the series first..last of the hot table (merged empty) or of `merged` into `generation`."""

    generation: int
    first: int
    last: int
    merged: tuple[int, ...] = ()
    last_chunk: bool = False

    def where(self) -> str:
        series = f"series_id BETWEEN {int(self.first)} AND {int(self.last)}"
        if not self.merged:
            return series
        return f"generation IN ({', '.join(str(int(g)) for g in self.merged)}) AND {series}"


class CoarseRollups:
    """Rollup rows of the coarse levels, gathered over the chunks of one rewrite.

    Each chunk's rollups are few rows per coarse level; written chunk by chunk, every row group
    of scalar_rollups would hold all coarse levels, and a read of one level would scan them all.
    Gathered and written level by level, a level lies in few row groups that zone maps find.
    """

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self.rows = 0
        self.first: int | None = None  # the first series of the chunks gathered since the last take

    def add(self, rollups: pa.Table, first_series: int) -> int:
        if self.first is None:
            self.first = first_series
        self._parts.append(rollups)
        self.rows += rollups.num_rows
        return self.rows

    def take(self) -> pa.Table:
        """Everything gathered, sorted by level (stable: by series and bucket within a level)."""
        gathered = pa.concat_tables(self._parts) if self._parts else pa.table({})
        self._parts, self.rows, self.first = [], 0, None
        if not gathered.num_columns:
            return gathered
        order = np.argsort(gathered.column("level").to_numpy(), kind="stable")
        return gathered.take(pa.array(order))


def _rollup_rows(rows: pa.Table, generation: int) -> pa.Table:
    """The scalar_rollups rows, level by level, of points sorted by (series_id, step)."""
    series_id = rows.column("series_id").to_numpy()
    step = rows.column("step").to_numpy()
    value = rows.column("value").to_numpy(zero_copy_only=False)
    levels = all_levels(series_id, step, value)
    size = sum(p.size for _, p in levels)

    def stacked(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for _, p in levels])

    no_numbers = stacked("numbers") == 0

    def nullable(name: str) -> pa.Array:  # min and max of a bucket of only NaN are NULL
        return pa.array(stacked(name), mask=no_numbers)

    return pa.table(
        {
            "generation": pa.array(np.full(size, generation, np.int32)),
            "series_id": stacked("series_id"),
            "level": np.concatenate([np.full(p.size, level, np.int8) for level, p in levels]),
            "bucket": stacked("bucket"),
            "points": stacked("points"),
            "numbers": stacked("numbers"),
            "sum": stacked("sum"),
            "first_step": stacked("first_step"),
            "first_value": stacked("first_value"),
            "last_step": stacked("last_step"),
            "last_value": stacked("last_value"),
            "min_step": nullable("min_step"),
            "min_value": nullable("min_value"),
            "max_step": nullable("max_step"),
            "max_value": nullable("max_value"),
        }
    )
