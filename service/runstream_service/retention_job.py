"""Applying the retention policy (retention.py) on a running server, in the background.

Every `interval_seconds`: what is due is found on a reader cursor (never blocking the writer), then
each run is deleted through the server's run actions (on a lake server: the lake's runs too, judged by
every server's points, and deleted from the lake by the deletion's move) (the same delete as `runstream runs delete`,
logged as `retention`), and old scalar series are thinned by jobs of the single writer, each over
a range of series of at most THIN_POINTS_PER_JOB points, so no transaction grows with the database.

Thinning keeps, per compacted generation, series and bucket of 2**THIN_LEVEL steps, the points at
the steps the bucket's rollup row names (first, last, minimum, maximum): a point is removed only
when a rollup row of its own generation covers its bucket and names another step, so a point
without its rollup row is never removed. Hot (not yet compacted) points are left alone: a series
with any is thinned once it has none. series_stats is lowered by what was removed; scalar_generations
is not (its sizes only schedule merges, and the compactor updates those rows in every step: touching
them here would conflict with it). The table `retention_thinned` (made here, CREATE TABLE IF NOT
EXISTS, when a policy has rules) records each thinned series with the wall time of its last point
then, so a series is thinned again only after new points came; rows of deleted runs' series are left
there (a few bytes).

On a lake server, whose file holds no scalar points, the lake's series are thinned by the server that does
the lake's maintenance (store/lake_retention.py).

A thinning job that meets the compactor over the same rows conflicts (DuckDB's optimistic
concurrency); it is retried a few times, else at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from runstream_service.errors import RunstreamError
from runstream_service.retention import RetentionPolicy
from runstream_service.store.base import Reads, Transaction
from runstream_service.store.lake import LAKE
from runstream_service.store.rollups import LEVEL_MIN
from runstream_service.store.series_points import lake_attached

logger = logging.getLogger("runstream.retention")

THIN_LEVEL = LEVEL_MIN  # the finest rollup tier: buckets of 16 steps
THIN_POINTS_PER_JOB = 2_000_000
ATTEMPTS = 3
DELETED_BY = "retention"
CREATE_STATE = (
    "CREATE TABLE IF NOT EXISTS retention_thinned "
    "(series_id INTEGER NOT NULL, last_wall DOUBLE NOT NULL, thinned_at DOUBLE NOT NULL)"
)


@dataclass
class RetentionStatus:
    """For /healthz; written on the event loop only."""

    last_run_at: float | None = None
    runs_deleted: int = 0
    series_thinned: int = 0
    points_removed: int = 0
    last_error: str | None = None


def _cutoff_table(cutoffs: dict[str, tuple[float | None, float | None]]) -> pa.Table:
    return pa.table(
        {
            "project": list(cutoffs),
            "delete_before": pa.array([c[0] for c in cutoffs.values()], pa.float64()),
            "raw_before": pa.array([c[1] for c in cutoffs.values()], pa.float64()),
        }
    )


# A lake server's runs: the lake's (rank 0's metadata, status as the lake's crash watch keeps it) and its own
# not moved yet; runs deleted in the lake left out.
LAKE_RUNS = f"""(
    SELECT run_id, project, status, created_at, finished_at FROM {LAKE}.lake_runs
    UNION ALL
    SELECT run_id, project, status, created_at, finished_at FROM run_meta
    WHERE run_id NOT IN (SELECT run_id FROM {LAKE}.lake_runs)
      AND run_id NOT IN (SELECT run_id FROM {LAKE}.lake_deleted_runs)
)"""


def projects(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The projects of the runs (on a lake server: of the lake's runs too)."""
    runs = LAKE_RUNS if lake_attached(con) else "run_meta"
    return [p for (p,) in con.execute(f"SELECT DISTINCT project FROM {runs} ORDER BY project").fetchall()]


def runs_due(con: duckdb.DuckDBPyConnection, cutoffs: dict[str, tuple[float | None, float | None]]) -> list[str]:
    """Runs not running whose last activity (end, else last point, else start) is before their project's cutoff."""
    if not any(c[0] is not None for c in cutoffs.values()):
        return []
    runs, lake_activity = "run_meta", "SELECT NULL::VARCHAR AS run_id, NULL::DOUBLE AS last_wall"
    if lake_attached(con):  # a lake server: the lake's runs too, and their points that other servers took
        runs = LAKE_RUNS
        lake_activity = f"SELECT run_id, max(wall_time) AS last_wall FROM {LAKE}.lake_scalars GROUP BY run_id"
    con.register("retention_cutoffs", _cutoff_table(cutoffs))
    try:
        rows = con.execute(
            f"""
            SELECT m.run_id
            FROM {runs} m JOIN retention_cutoffs c USING (project)
            LEFT JOIN (SELECT se.run_id, max(st.last_wall) AS last_wall
                       FROM series_stats st JOIN series se USING (series_id) GROUP BY se.run_id) w USING (run_id)
            LEFT JOIN ({lake_activity}) l USING (run_id)
            WHERE c.delete_before IS NOT NULL AND m.status <> 'running'
              AND greatest(m.created_at, coalesce(m.finished_at, 0), coalesce(w.last_wall, 0),
                           coalesce(l.last_wall, 0)) < c.delete_before
            ORDER BY m.run_id
            """
        ).fetchall()
    finally:
        con.unregister("retention_cutoffs")
    return [run_id for (run_id,) in rows]


def series_due(
    con: duckdb.DuckDBPyConnection, cutoffs: dict[str, tuple[float | None, float | None]]
) -> list[tuple[int, int, float]]:
    """(series_id, points, last_wall) of scalar series to thin: last point before the cutoff, none hot,
    not thinned since their last point."""
    if not any(c[1] is not None for c in cutoffs.values()):
        return []
    con.register("retention_cutoffs", _cutoff_table(cutoffs))
    try:
        rows = con.execute(
            """
            SELECT st.series_id, st.points, st.last_wall
            FROM series_stats st JOIN series se USING (series_id) JOIN run_meta m USING (run_id)
            JOIN retention_cutoffs c USING (project)
            LEFT JOIN retention_thinned t USING (series_id)
            WHERE se.kind = 'scalar' AND c.raw_before IS NOT NULL AND st.last_wall < c.raw_before
              AND (t.series_id IS NULL OR t.last_wall < st.last_wall)
              AND st.series_id NOT IN (SELECT DISTINCT series_id FROM scalar_points_hot)
            ORDER BY st.series_id
            """
        ).fetchall()
    finally:
        con.unregister("retention_cutoffs")
    return [(int(s), int(p), float(w)) for s, p, w in rows]


def jobs_of(
    series: list[tuple[int, int, float]], limit: int = THIN_POINTS_PER_JOB
) -> list[list[tuple[int, int, float]]]:
    """Consecutive groups of series of at most `limit` points (a bigger series alone)."""
    groups: list[list[tuple[int, int, float]]] = []
    current: list[tuple[int, int, float]] = []
    total = 0
    for entry in series:
        if current and total + entry[1] > limit:
            groups.append(current)
            current, total = [], 0
        current.append(entry)
        total += entry[1]
    if current:
        groups.append(current)
    return groups


# A compacted point is removed when the rollup row of its generation, series and bucket names other steps.
_REMOVABLE = f"""
    p.series_id IN (SELECT series_id FROM thinning) AND EXISTS (
        SELECT 1 FROM scalar_rollups r
        WHERE r.series_id = p.series_id AND r.generation = p.generation AND r.level = {THIN_LEVEL}
          AND r.bucket = p.step >> {THIN_LEVEL}
          AND p.step <> r.first_step AND p.step <> r.last_step
          AND p.step IS DISTINCT FROM r.min_step AND p.step IS DISTINCT FROM r.max_step)
"""


def thin(con: duckdb.DuckDBPyConnection, series: list[tuple[int, int, float]], now: float) -> int:
    """Thin `series` (inside the caller's transaction); returns the points removed."""
    con.register(
        "thinning",
        pa.table(
            {
                "series_id": pa.array([s for s, _, _ in series], pa.int32()),
                "last_wall": pa.array([w for _, _, w in series], pa.float64()),
            }
        ),
    )
    try:
        removed = con.sql(
            f"SELECT series_id, generation, count(*) FROM scalar_points p WHERE {_REMOVABLE} GROUP BY ALL"
        ).to_arrow_table()
        total = int(pc.sum(removed.column(2)).as_py() or 0)
        if total:
            con.execute(f"DELETE FROM scalar_points p WHERE {_REMOVABLE}")
            con.register("thinned_counts", removed.rename_columns(["series_id", "generation", "points"]))
            try:
                con.execute(
                    "UPDATE series_stats SET points = series_stats.points - d.points FROM "
                    "(SELECT series_id, sum(points) AS points FROM thinned_counts GROUP BY series_id) d "
                    "WHERE series_stats.series_id = d.series_id"
                )
            finally:
                con.unregister("thinned_counts")
        con.execute("DELETE FROM retention_thinned WHERE series_id IN (SELECT series_id FROM thinning)")
        con.execute("INSERT INTO retention_thinned SELECT series_id, last_wall, ? FROM thinning", [now])
    finally:
        con.unregister("thinning")
    return total


class Retention:
    """The background task: `run(stopping)` applies the policy every interval until `stopping` is set."""

    def __init__(
        self,
        policy: RetentionPolicy,
        reads: Reads,
        submit: Callable[[Transaction], Awaitable[Any]],
        delete_run: Callable[[str, str], Awaitable[Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self._reads = reads
        self._submit = submit
        self._delete_run = delete_run
        self._clock = clock
        self.status = RetentionStatus()

    def as_json(self) -> dict[str, Any]:
        s = self.status
        return self.policy.as_json() | {
            "last_run_at": s.last_run_at,
            "runs_deleted": s.runs_deleted,
            "series_thinned": s.series_thinned,
            "points_removed": s.points_removed,
            "last_error": s.last_error,
        }

    async def run(self, stopping: asyncio.Event) -> None:
        if self.policy.empty:
            return
        await self._submit(Transaction(lambda con: con.execute(CREATE_STATE)))
        while not stopping.is_set():
            try:
                await self.apply_once()
                self.status.last_error = None
            except Exception as exc:  # keep serving; said in /healthz and the log, tried again next time
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception(
                    "applying the retention policy failed; trying again in %g s", self.policy.interval_seconds
                )
            try:
                await asyncio.wait_for(stopping.wait(), self.policy.interval_seconds)
            except TimeoutError:
                pass

    async def apply_once(self) -> None:
        now = self._clock()
        cutoffs = self.policy.cutoffs(await self._reads.run(projects), now)
        for run_id in await self._reads.run(lambda cur: runs_due(cur, cutoffs)):
            try:
                await self._delete_run(run_id, DELETED_BY)
                self.status.runs_deleted += 1
            except RunstreamError as exc:  # gone meanwhile, or busy: the next interval tries again
                logger.info("retention: run %s not deleted now (%s)", run_id, exc)
        for job in jobs_of(await self._reads.run(lambda cur: series_due(cur, cutoffs))):
            removed = await self._thin(job, now)
            if removed is not None:
                self.status.series_thinned += len(job)
                self.status.points_removed += removed
        self.status.last_run_at = now

    async def _thin(self, job: list[tuple[int, int, float]], now: float) -> int | None:
        for attempt in range(ATTEMPTS):
            try:
                removed: int = await self._submit(Transaction(lambda con: thin(con, job, now)))
                return removed
            except duckdb.TransactionException as exc:  # the compactor rewrote these rows meanwhile
                logger.info("retention: thinning met the compactor (%s); trying again", exc)
                await asyncio.sleep(0.5 * (attempt + 1))
        return None
