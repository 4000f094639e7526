"""The mover: a thread that empties this server's outbox (store/lake_store.py) into the lake in large commits.

One move, under the movers' PostgreSQL advisory lock (one server at a time, so the check for keys already
in the lake and the insert cannot race with another server's):
  1. the outbox's batch keys, read once (a batch's rows and its key committed together locally);
  2. ONE lake transaction: the points of the batches whose keys are not in ``lake_batches`` yet, sorted by
     run, tag and step (so the Parquet files' zone maps prune a one-series read), their rollup partials
     (``lake_rollups``, every level, as the local compactor keeps them), their keys, and the
     metadata of the runs noted in the outbox (rank 0's name and config win, whichever server it reached);
  3. a local transaction deleting those batches (moved now, or by another server earlier) from the outbox.
A crash between 2 and 3 leaves keys that are in the lake: the next move skips their points and deletes them.

Every ``maintenance_seconds`` a server that takes the maintenance lock (without waiting) runs DuckLake's
own compaction of small files and expiry of old snapshots, and retention's thinning of old series
(store/lake_retention.py).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runstream_service.store.kinds import Kind
from runstream_service.store.lake import (
    LAKE,
    MAINTENANCE_LOCK,
    MOVER_LOCK,
    OTHER_KINDS,
    LakeConfig,
    LakeError,
    catalog_dsn,
    lake_table,
    not_in_lake,
)
from runstream_service.store.lake_crashes import CRASH_LOCK, LakeCrashes
from runstream_service.store.lake_retention import Cutoffs, thin_lake
from runstream_service.store.lake_store import LakeRun, outbox_table
from runstream_service.store.rollups import FIELDS, all_levels
from runstream_service.store.transactions import registered, transaction

logger = logging.getLogger("runstream.lake")

# The points a move puts into the lake: the outbox rows of batches not in the lake yet, runs deleted left out.
MOVED = (
    "(SELECT o.run_id, o.tag, o.step, o.rank, o.wall_time, o.value "
    "FROM lake_outbox_scalars o SEMI JOIN moving_new USING (writer_id, seq) "
    f"WHERE o.run_id NOT IN (SELECT run_id FROM {LAKE}.lake_deleted_runs))"
)
# Points summarised at a time (a backlog moved at once may hold millions): partials of a bucket split between
# two chunks are two rows, which reads combine as they do the rows of two moves.
ROLLUP_CHUNK = 1_000_000
SNAPSHOT_KEEP = "1 hour"  # DuckLake snapshots older than this are expired by maintenance
RUNS_REFRESH_SECONDS = 2.0  # how often the lake's runs are read again when this server's moves changed none
CRASH_CHECK_SECONDS = 2.0  # how often a server publishes its live runs and (one at a time) marks crashed ones


def _arrow(cur: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    table = cur.execute(sql).to_arrow_table()
    assert table is not None  # a SELECT always has a result
    return table


@dataclass(frozen=True)
class Move:
    """What one move did: batches whose points went to the lake, batches another move had already put there."""

    moved: int
    already: int
    points: int
    runs: int
    deleted: bool = False  # it carried run deletions


class Mover:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        config: LakeConfig,
        server: str | None = None,
        on_runs: Callable[[Mapping[str, LakeRun], frozenset[str]], None] | None = None,
        outboxed: Callable[[], int] = lambda: 0,
        crashes: LakeCrashes | None = None,
        retention: Callable[[list[str], float], Cutoffs] | None = None,
    ) -> None:
        try:
            import psycopg2  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError as exc:  # pragma: no cover - the lake extra brings it
            raise LakeError("the lake needs psycopg2: pip install 'runstream[lake]'") from exc
        self._cur = con.cursor()
        self._config = config
        dsn = catalog_dsn(config.catalog)

        def connect_pg() -> Any:
            connection = psycopg2.connect(dsn)
            connection.autocommit = True
            return connection

        self._connect_pg = connect_pg
        self._pg = connect_pg()
        self._server = server or socket.gethostname()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runstream-lake-mover", daemon=True)
        self._next_maintenance = time.monotonic() + config.maintenance_seconds
        self._on_runs = on_runs  # told the lake's runs and deleted runs after each move (LakeStore.lake_runs)
        self.moves = 0
        self.last_error: str | None = None
        self._outboxed = outboxed  # points put into the outbox since start (LakeStore.outboxed_points)
        self._looked = (0, 0)  # (the outbox's points, outboxed()) when the mover last counted them
        self._crashes = crashes  # crashed runs across servers (store/lake_crashes.py); None: not watched
        self._retention = retention  # projects, now -> retention cutoffs (retention.py); None: no rules
        self.thinned = (0, 0)  # series thinned and points removed in the lake by this server's maintenance
        self._next_crash_check = 0.0
        self._next_runs_refresh = 0.0

    @property
    def backlog_points(self) -> int:
        """Points acknowledged here and not moved yet: as the mover last counted them, plus those since."""
        in_outbox, outboxed = self._looked
        return in_outbox + self._outboxed() - outboxed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after a last move (what this server acknowledged goes to the lake before it exits)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pg.close()

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                move = self.move_once()
                if self._crashes is not None and not stopping and time.monotonic() >= self._next_crash_check:
                    self._next_crash_check = time.monotonic() + CRASH_CHECK_SECONDS
                    self.check_crashes(self._crashes)
                if self._on_runs is not None and (
                    move.runs or move.deleted or time.monotonic() >= self._next_runs_refresh
                ):  # the lake's runs (other servers' too): after a move that changed them, else now and then
                    self._next_runs_refresh = time.monotonic() + RUNS_REFRESH_SECONDS
                    self._on_runs(self.lake_runs(), self.lake_deleted())
                if not stopping and time.monotonic() >= self._next_maintenance:
                    self._next_maintenance = time.monotonic() + self._config.maintenance_seconds
                    self.maintain()
                self.last_error = None
            except Exception as exc:  # the outbox keeps everything: the next move retries
                self.last_error = str(exc)
                logger.warning("moving to the lake failed (retried in %.1f s): %s", self._config.move_seconds, exc)
            if stopping:
                return
            self._wake.wait(self._config.move_seconds)
            self._wake.clear()

    @contextmanager
    def _locked(self, key: int, wait: bool = True) -> Iterator[bool]:
        if self._pg.closed:  # PostgreSQL went away since: a new session (its locks went with the old one)
            self._pg = self._connect_pg()
        with self._pg.cursor() as pg:
            if wait:
                pg.execute("SELECT pg_advisory_lock(%s)", (key,))
                got = True
            else:
                pg.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                got = bool(pg.fetchone()[0])
            try:
                yield got
            finally:
                if got:
                    pg.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def move_once(self) -> Move:
        cur = self._cur
        outboxed = self._outboxed()  # before the count: a batch committed in between is counted twice, not missed
        keys = _arrow(cur, "SELECT writer_id, seq, points FROM lake_outbox_batches")
        self._looked = (int(pc.sum(keys.column("points")).as_py() or 0), outboxed)
        runs = _arrow(cur, "SELECT note, run_id, rank, noted_at FROM lake_outbox_runs")
        deletions = _arrow(cur, "SELECT run_id, deleted_at FROM lake_outbox_deletions")
        labels = _arrow(cur, "SELECT * FROM lake_outbox_labels")
        if not keys.num_rows and not runs.num_rows and not deletions.num_rows and not labels.num_rows:
            return Move(0, 0, 0, 0)
        cur.register("moving", keys)
        cur.register("moving_runs", runs)
        cur.register("moving_deletions", deletions)
        cur.register("moving_labels", labels)
        try:
            kinds = _kinds_waiting(cur)
            with self._locked(MOVER_LOCK):
                report = self._to_lake(cur, deleting=deletions.num_rows > 0, labelling=labels.num_rows > 0, kinds=kinds)
            self._from_outbox(cur, kinds)
            outboxed = self._outboxed()
            left = cur.execute("SELECT coalesce(sum(points), 0) FROM lake_outbox_batches").fetchall()
            self._looked = (int(left[0][0]), outboxed)
        finally:
            cur.unregister("moving")
            cur.unregister("moving_runs")
            cur.unregister("moving_deletions")
            cur.unregister("moving_labels")
        self.moves += 1
        return report

    def _to_lake(
        self, cur: duckdb.DuckDBPyConnection, deleting: bool, labelling: bool, kinds: tuple[Kind, ...]
    ) -> Move:
        with transaction(cur):
            new = _arrow(cur, f"SELECT m.writer_id, m.seq FROM moving m {not_in_lake('m')}")
            with registered(cur, "moving_new", new):
                if deleting:  # (the four DELETEs scan the lake's files even when no run is named)
                    self._deletions_to_lake(cur)
                points: int = cur.execute(
                    f"INSERT INTO {LAKE}.lake_scalars SELECT run_id, tag, step, rank, wall_time, value FROM {MOVED} "
                    "ORDER BY run_id, tag, step"
                ).fetchall()[0][0]
                _rollups_to_lake(cur)
                _extras_to_lake(cur)
                for kind in kinds:
                    cur.execute(
                        f"INSERT INTO {lake_table(kind)} SELECT b.run_id, list_extract(b.tags, p.tag_index + 1), "
                        f"p.* EXCLUDE (batch_key, tag_index) FROM {outbox_table(kind)} p "
                        "JOIN lake_outbox_batches b USING (batch_key) SEMI JOIN moving_new USING (writer_id, seq) "
                        f"WHERE b.run_id NOT IN (SELECT run_id FROM {LAKE}.lake_deleted_runs) ORDER BY 1, 2, 3"
                    )
                cur.execute(
                    f"INSERT INTO {LAKE}.lake_batches SELECT writer_id, seq, ?, ? FROM moving_new",
                    [self._server, time.time()],
                )
                runs = self._runs_to_lake(cur)
                if labelling:
                    _labels_to_lake(cur)
        return Move(
            new.num_rows,
            len(cur.execute("SELECT 1 FROM moving").fetchall()) - new.num_rows,
            points,
            runs + (1 if labelling else 0),
            deleting,
        )

    def _deletions_to_lake(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Runs deleted here: recorded in the lake, their points and rows deleted from it."""
        cur.execute(
            f"INSERT INTO {LAKE}.lake_deleted_runs SELECT DISTINCT ON (run_id) run_id, deleted_at, ? "
            f"FROM moving_deletions WHERE run_id NOT IN (SELECT run_id FROM {LAKE}.lake_deleted_runs)",
            [self._server],
        )
        tables = (
            "lake_scalars",
            "lake_rollups",
            "lake_runs",
            "lake_run_ranks",
            "lake_run_labels",
            "lake_thinned",
            "lake_tag_info",
            "lake_custom_scalar_layouts",
        )
        for table in (*(f"{LAKE}.{name}" for name in tables), *(lake_table(kind) for kind in OTHER_KINDS)):
            cur.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM moving_deletions)")

    def _runs_to_lake(self, cur: duckdb.DuckDBPyConnection) -> int:
        """Runs noted in the outbox, and runs of moved points the lake lacks: their rows, rank 0's winning,
        each replacing the lake's only if the lake lacks it or holds an older note (``noted_at``)."""
        moving_runs = _arrow(
            cur,
            "SELECT run_id FROM moving_runs UNION "
            "SELECT DISTINCT o.run_id FROM lake_outbox_batches o SEMI JOIN moving_new USING (writer_id, seq) "
            f"WHERE o.run_id NOT IN (SELECT run_id FROM {LAKE}.lake_runs) "
            f"EXCEPT SELECT run_id FROM {LAKE}.lake_deleted_runs",
        )
        cur.register("lake_runs_moving", moving_runs)
        metas = _arrow(
            cur,
            "WITH noted AS (SELECT run_id, max(noted_at) AS noted_at FROM moving_runs GROUP BY run_id) "
            "SELECT m.run_id, m.project, m.name, CAST(m.config AS VARCHAR) AS config, m.status, m.created_at, "
            "m.finished_at, m.host, m.world_size, coalesce(n.noted_at, 0) AS noted_at "
            "FROM run_meta m SEMI JOIN lake_runs_moving USING (run_id) LEFT JOIN noted n USING (run_id) "
            f"LEFT JOIN {LAKE}.lake_runs l USING (run_id) "
            "WHERE l.run_id IS NULL OR (m.run_id IN (SELECT run_id FROM run_ranks WHERE rank = 0) "
            "AND coalesce(n.noted_at, 0) > coalesce(l.noted_at, 0))",
        )
        ranks = _arrow(
            cur,
            "WITH noted AS (SELECT run_id, rank, max(noted_at) AS noted_at FROM moving_runs GROUP BY ALL) "
            "SELECT r.run_id, r.rank, r.host, r.started_at, r.finished_at, r.status, "
            "coalesce(n.noted_at, 0) AS noted_at "
            "FROM run_ranks r SEMI JOIN lake_runs_moving USING (run_id) LEFT JOIN noted n USING (run_id, rank) "
            f"LEFT JOIN {LAKE}.lake_run_ranks l USING (run_id, rank) "
            "WHERE l.run_id IS NULL OR coalesce(n.noted_at, 0) > coalesce(l.noted_at, 0)",
        )
        cur.unregister("lake_runs_moving")
        cur.register("metas", metas)
        cur.register("ranks", ranks)
        try:
            if metas.num_rows:
                cur.execute(f"DELETE FROM {LAKE}.lake_runs WHERE run_id IN (SELECT run_id FROM metas)")
                cur.execute(
                    f"INSERT INTO {LAKE}.lake_runs (run_id, project, name, config, status, created_at, finished_at, "
                    "host, world_size, noted_at) SELECT * FROM metas"
                )
            if ranks.num_rows:
                cur.execute(
                    f"DELETE FROM {LAKE}.lake_run_ranks l USING ranks r WHERE l.run_id = r.run_id AND l.rank = r.rank"
                )
                cur.execute(
                    f"INSERT INTO {LAKE}.lake_run_ranks (run_id, rank, host, started_at, finished_at, status, "
                    "noted_at) SELECT * FROM ranks"
                )
        finally:
            cur.unregister("metas")
            cur.unregister("ranks")
        rows: int = metas.num_rows
        return rows

    def _from_outbox(self, cur: duckdb.DuckDBPyConnection, kinds: tuple[Kind, ...]) -> None:
        with transaction(cur):
            outboxes = ("lake_outbox_points", "lake_outbox_tag_info", "lake_outbox_layouts")
            for table in (*outboxes, *(outbox_table(kind) for kind in kinds)):
                cur.execute(
                    f"DELETE FROM {table} WHERE batch_key IN "
                    "(SELECT b.batch_key FROM lake_outbox_batches b SEMI JOIN moving m USING (writer_id, seq))"
                )
            cur.execute(
                "DELETE FROM lake_outbox_batches o USING moving m WHERE o.writer_id = m.writer_id AND o.seq = m.seq"
            )
            # by note: a run's note written since the move read them (its finish, say) is moved next time
            cur.execute(
                "DELETE FROM lake_outbox_runs WHERE coalesce(note, 0) IN (SELECT coalesce(note, 0) FROM moving_runs)"
            )
            cur.execute(
                "DELETE FROM lake_outbox_labels o USING moving_labels m WHERE o.run_id = m.run_id "
                "AND o.noted_at = m.noted_at"
            )
            cur.execute(
                "DELETE FROM lake_outbox_deletions o USING moving_deletions m "
                "WHERE o.run_id = m.run_id AND o.deleted_at = m.deleted_at"
            )

    def lake_runs(self) -> dict[str, LakeRun]:
        rows = self._cur.execute(
            f"SELECT run_id, project, name, config, world_size, host, created_at FROM {LAKE}.lake_runs"
        ).fetchall()
        return {run: LakeRun(p, n, c or "{}", w, h or "", t) for run, p, n, c, w, h, t in rows}

    def check_crashes(self, crashes: LakeCrashes) -> None:
        """Publish what this server sees alive; if no other server is at it, mark crashed and revived runs."""
        if self._pg.closed:
            self._pg = self._connect_pg()
        with self._pg.cursor() as pg:
            crashes.publish(pg)
            now = time.time()
            if not crashes.due(now):
                return
            with self._locked(CRASH_LOCK, wait=False) as got:
                if not got:
                    return
                with self._locked(MOVER_LOCK):
                    crashed, revived = crashes.mark(pg, self._cur, now)
        if crashed:
            logger.warning(
                "runstream: run(s) %s crashed: no server saw a writer for %g s (--crash-after)",
                ", ".join(crashed),
                crashes.crash_after,
            )
        if revived:
            logger.info("runstream: run(s) %s are running again (a writer came back)", ", ".join(revived))

    def lake_deleted(self) -> frozenset[str]:
        return frozenset(run for (run,) in self._cur.execute(f"SELECT run_id FROM {LAKE}.lake_deleted_runs").fetchall())

    def fold_batch_keys(self) -> int:
        """Each writer's unbroken run of seqs from 1 into its mark, those keys out of lake_batches (one lake
        transaction; the caller holds the movers' lock). Returns the keys folded."""
        cur = self._cur
        with transaction(cur), registered(cur, "new_marks", _arrow(cur, FOLDED)):
            (folded,) = cur.execute(
                f"DELETE FROM {LAKE}.lake_batches b USING new_marks n "
                "WHERE b.writer_id = n.writer_id AND b.seq <= n.seq_done"
            ).fetchall()[0]
            cur.execute(f"DELETE FROM {LAKE}.lake_writer_marks WHERE writer_id IN (SELECT writer_id FROM new_marks)")
            cur.execute(f"INSERT INTO {LAKE}.lake_writer_marks SELECT writer_id, seq_done FROM new_marks")
        return int(folded)

    def combine_rollups(self) -> int:
        """One ``lake_rollups`` row per bucket where moves left several (one lake transaction; the caller holds
        the movers' lock). Returns the rows removed."""
        cur = self._cur
        with transaction(cur), registered(cur, "combined_rollups", _arrow(cur, COMBINED_ROLLUPS)) as combined:
            (removed,) = cur.execute(
                f"DELETE FROM {LAKE}.lake_rollups r USING combined_rollups c WHERE r.run_id = c.run_id "
                "AND r.tag = c.tag AND r.level = c.level AND r.bucket = c.bucket"
            ).fetchall()[0]
            cur.execute(f"INSERT INTO {LAKE}.lake_rollups BY NAME SELECT * FROM combined_rollups")
        return int(removed) - int(combined.num_rows)

    def thin(self) -> tuple[int, int]:
        """Retention's raw_after_days on the lake (store/lake_retention.py; the caller holds the movers' lock)."""
        assert self._retention is not None
        projects = [p for (p,) in self._cur.execute(f"SELECT DISTINCT project FROM {LAKE}.lake_runs").fetchall()]
        series, points = thin_lake(self._cur, self._retention(projects, time.time()))
        if series:
            logger.info("retention: %d series thinned in the lake, %d points removed", series, points)
            self.thinned = (self.thinned[0] + series, self.thinned[1] + points)
        return series, points

    def maintain(self) -> bool:
        """DuckLake's compaction of small files and snapshot expiry, if no other server is at it (True: ran)."""
        with self._locked(MAINTENANCE_LOCK, wait=False) as got:
            if not got:
                return False
            with self._locked(MOVER_LOCK):
                self.fold_batch_keys()
                self.combine_rollups()
                if self._retention is not None:
                    self.thin()
            self._cur.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')")
            self._cur.execute(
                f"CALL ducklake_expire_snapshots('{LAKE}', older_than => now() - INTERVAL '{SNAPSHOT_KEEP}')"
            )
            self._cur.execute(
                f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => now() - INTERVAL '{SNAPSHOT_KEEP}')"
            )
            return True


FOLDED = f"""
SELECT writer_id, max(seq) AS seq_done FROM (
    SELECT b.writer_id, b.seq, coalesce(w.seq_done, 0) AS base,
           row_number() OVER (PARTITION BY b.writer_id ORDER BY b.seq) AS n
    FROM {LAKE}.lake_batches b LEFT JOIN {LAKE}.lake_writer_marks w USING (writer_id)
    WHERE b.seq > coalesce(w.seq_done, 0)
) WHERE seq = base + n GROUP BY writer_id
"""  # per writer, the end of its unbroken run of seqs past its mark (none: the writer is left out)


# The rollup partials of each bucket that several moves (or servers) summarised, combined into one row, as
# store/rollups.py's combine does: counts and sums added, first and last by step, the smallest and largest
# value with the earliest step holding it (NULL in a bucket of only NaN). Ordered as the mover writes them.
COMBINED_ROLLUPS = f"""
WITH rows AS (
    SELECT r.*, min(min_value) OVER bucket AS low, max(max_value) OVER bucket AS high
    FROM {LAKE}.lake_rollups r
    SEMI JOIN (SELECT run_id, tag, level, bucket FROM {LAKE}.lake_rollups GROUP BY ALL HAVING count(*) > 1) d
        USING (run_id, tag, level, bucket)
    WINDOW bucket AS (PARTITION BY run_id, tag, level, bucket)
)
SELECT run_id, tag, level, bucket, CAST(sum(points) AS BIGINT) AS points, CAST(sum(numbers) AS BIGINT) AS numbers,
       sum(sum) AS sum, min(first_step) AS first_step, arg_min(first_value, first_step) AS first_value,
       max(last_step) AS last_step, arg_max(last_value, last_step) AS last_value,
       min(min_step) FILTER (WHERE min_value = low) AS min_step, any_value(low) AS min_value,
       min(max_step) FILTER (WHERE max_value = high) AS max_step, any_value(high) AS max_value
FROM rows GROUP BY run_id, tag, level, bucket
ORDER BY level, run_id, tag, bucket
"""


# What the moving batches said of their tags (tag_info) and runs (custom_scalar_layouts): the newest of each
# (run, tag) or run replaces the lake's row unless that is newer (another server's later batch).
EXTRAS = {  # lake table: (its outbox, its key, its columns)
    "tag_info": ("lake_outbox_tag_info", ("run_id", "tag"), ("run_id", "tag", "display_name", "description")),
    "custom_scalar_layouts": ("lake_outbox_layouts", ("run_id",), ("run_id", "layout")),
}


def _extras_to_lake(cur: duckdb.DuckDBPyConnection) -> None:
    for name, (outbox, key, columns) in EXTRAS.items():
        if not cur.execute(f"SELECT EXISTS (SELECT 1 FROM {outbox})").fetchall()[0][0]:
            continue
        keys, of_outbox = ", ".join(key), ", ".join(f"o.{k}" for k in key)
        newest = _arrow(
            cur,
            f"SELECT DISTINCT ON ({of_outbox}) {', '.join(f'o.{c}' for c in columns)}, o.updated_at "
            f"FROM {outbox} o JOIN lake_outbox_batches b USING (batch_key) SEMI JOIN moving_new USING (writer_id, seq) "
            f"WHERE o.run_id NOT IN (SELECT run_id FROM {LAKE}.lake_deleted_runs) "
            f"ORDER BY {of_outbox}, o.updated_at DESC",
        )
        if not newest.num_rows:
            continue
        match = " AND ".join(f"l.{k} = n.{k}" for k in key)
        with registered(cur, "newest_extras", newest):
            cur.execute(
                f"DELETE FROM {LAKE}.lake_{name} l USING newest_extras n WHERE {match} AND l.updated_at < n.updated_at"
            )
            cur.execute(
                f"INSERT INTO {LAKE}.lake_{name} SELECT n.* FROM newest_extras n "
                f"ANTI JOIN {LAKE}.lake_{name} l USING ({keys})"
            )


def _kinds_waiting(cur: duckdb.DuckDBPyConnection) -> tuple[Kind, ...]:
    """The kinds other than scalars with points in the outbox (read before the move: a batch committed since
    is not among the moving ones, and its points wait for the next move)."""
    found = cur.execute(
        "SELECT " + ", ".join(f"EXISTS (SELECT 1 FROM {outbox_table(kind)})" for kind in OTHER_KINDS)
    ).fetchall()[0]
    return tuple(kind for kind, waiting in zip(OTHER_KINDS, found, strict=True) if waiting)


def _labels_to_lake(cur: duckdb.DuckDBPyConnection) -> None:
    """Each run's newest name and labels noted in the outbox, replacing the lake's row unless that is newer
    (another server's later change); runs deleted in the lake left out."""
    newest = _arrow(
        cur,
        "SELECT DISTINCT ON (run_id) * FROM moving_labels "
        f"WHERE run_id NOT IN (SELECT run_id FROM {LAKE}.lake_deleted_runs) ORDER BY run_id, noted_at DESC",
    )
    cur.register("newest_labels", newest)  # (not a temp table: this transaction writes the lake)
    try:
        cur.execute(
            f"DELETE FROM {LAKE}.lake_run_labels l USING newest_labels n "
            "WHERE l.run_id = n.run_id AND l.noted_at < n.noted_at"
        )
        cur.execute(
            f"INSERT INTO {LAKE}.lake_run_labels SELECT n.run_id, n.name, n.tags, n.note, n.archived, n.noted_at "
            f"FROM newest_labels n ANTI JOIN {LAKE}.lake_run_labels l USING (run_id)"
        )
    finally:
        cur.unregister("newest_labels")


def _rollups_to_lake(cur: duckdb.DuckDBPyConnection) -> None:
    """The moved points' rollup partials (store/rollups.py), every level, into ``lake_rollups``: in the move's
    lake transaction, so they land exactly once with the points they summarise. Partials of one bucket from
    several moves or servers are combined by the reads (store/lake_queries.py)."""
    series = _arrow(cur, f"SELECT DISTINCT run_id, tag FROM {MOVED} ORDER BY run_id, tag")
    if not series.num_rows:
        return
    series = series.append_column("series_id", pa.array(np.arange(series.num_rows, dtype=np.int32)))
    cur.register("moving_series", series)
    try:
        chunks = cur.execute(
            f"SELECT s.series_id, p.step, p.value FROM {MOVED} p JOIN moving_series s USING (run_id, tag) "
            "ORDER BY s.series_id, p.step, p.rank"
        ).to_arrow_reader(ROLLUP_CHUNK)
        assert chunks is not None  # a SELECT always has a result
        rows = [
            rollup_rows(series, *(chunk.column(name).to_numpy() for name in ("series_id", "step", "value")))
            for chunk in chunks
        ]
    finally:
        cur.unregister("moving_series")
    cur.register("moving_rollups", pa.concat_tables(rows))
    try:
        cur.execute(f"INSERT INTO {LAKE}.lake_rollups BY NAME SELECT * FROM moving_rollups")
    finally:
        cur.unregister("moving_rollups")


def rollup_rows(series: pa.Table, series_id: np.ndarray, step: np.ndarray, value: np.ndarray) -> pa.Table:
    """The ``lake_rollups`` rows of points sorted by (series_id, step), ordered by (level, run_id, tag, bucket):
    a read takes one level, so the Parquet row groups' statistics skip the others (ordered by run first, every
    row group held all levels of its runs, and a 20-run overlay read them all: measured 2x slower).

    `series` names each series: row i is series i's (run_id, tag), in (run_id, tag) order. A bucket's smallest
    and largest number (and their steps) are NULL when it holds only NaN.
    """
    levels = all_levels(np.asarray(series_id), np.asarray(step), np.asarray(value, dtype=np.float64))
    level = np.concatenate([np.full(p.size, lv, np.int8) for lv, p in levels])
    stacked = {name: np.concatenate([getattr(p, name) for _, p in levels]) for name in FIELDS}
    order = np.lexsort((stacked["bucket"], stacked["series_id"], level))
    rows = {name: values[order] for name, values in stacked.items()}
    owner = pa.array(rows.pop("series_id"))
    no_numbers = rows["numbers"] == 0
    return pa.table(
        {"run_id": series.column("run_id").take(owner), "tag": series.column("tag").take(owner), "level": level[order]}
        | {
            name: pa.array(values, mask=no_numbers if name.startswith(("min_", "max_")) else None)
            for name, values in rows.items()
        }
    )
