"""The store in one DuckDB file: the Store (store/base.py) the server runs on.

Each append is one transaction: new series, one Arrow INSERT per point table, the commit's
scalar summary folded into series_stats, what the batches say of their tags (tag_info) and the
runs' custom-scalar layouts (the last one given wins), and writer_progress with each writer's
source_offset, so a replay is recognised exactly when its points are there. Small tables
(series, writer_progress, run ranks, which series have stats) are cached in memory; the writer
thread is their only writer, and updates a cache only once its transaction has committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from runstream_service.store.base import (
    NEEDS_TRANSACTION,
    FinishRun,
    OpenRun,
    RunDeleted,
    RunsSnapshot,
    Transaction,
    UnknownRun,
)
from runstream_service.store.kinds import SCALAR
from runstream_service.store.lifecycle import deleted_message, deleted_run_ids, importer_writer_prefix
from runstream_service.store.schema import create_schema
from runstream_service.store.tables import SeriesIds, build_rows
from runstream_service.store.transactions import insert_rows, rollback
from runstream_service.validate import DecodedBatch

logger = logging.getLogger("runstream.writer")


class FileStore:
    """The Store of one DuckDB file. With `scalar_points` False (a lake server, whose outbox holds them:
    store/lake_store.py) scalar points are not appended, but their series and series_stats are kept."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, scalar_points: bool = True) -> None:
        create_schema(con)
        self._con = con
        self._scalar_points = scalar_points
        self.series_ids = SeriesIds(
            {(r, k, t): s for s, r, k, t in con.execute("SELECT series_id, run_id, kind, tag FROM series").fetchall()}
        )
        self._seqs: dict[str, int] = dict(con.execute("SELECT writer_id, seq FROM writer_progress").fetchall())
        self._stats_known: set[int] = {s for (s,) in con.execute("SELECT series_id FROM series_stats").fetchall()}
        self._runs = RunsSnapshot.of(
            dict(con.execute("SELECT run_id, project FROM run_meta").fetchall()), frozenset(deleted_run_ids(con))
        )
        self._ranks: set[tuple[str, int]] = {
            (r, k) for r, k in con.execute("SELECT run_id, rank FROM run_ranks").fetchall()
        }

    @property
    def runs(self) -> RunsSnapshot:
        return self._runs

    def committed_seq(self, writer_id: str) -> int:
        return self._seqs.get(writer_id, 0)

    def append(self, batches: Sequence[DecodedBatch], progress: Mapping[str, int]) -> None:
        con = self._con
        try:
            rows = build_rows(batches, self.series_ids)
            con.execute("BEGIN")
            if rows.series is not None:
                insert_rows(con, "series", rows.series)
            for kind, table in rows.points.items():
                if kind is not SCALAR or self._scalar_points:
                    insert_rows(con, kind.table, table)
            stats_added = self._update_series_stats(rows.scalar_stats) if rows.scalar_stats is not None else []
            self._save_extras(batches)
            for batch in batches:
                for write in batch.with_commit:
                    write.work(con)
            self._save_seqs(progress, _source_offsets(batches, progress))
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            self.series_ids.forget()
            for batch in batches:
                for write in batch.with_commit:
                    if write.on_rollback is not None:
                        write.on_rollback()
            raise
        self.series_ids.adopt()
        self._seqs.update(progress)
        self._stats_known.update(stats_added)

    def _update_series_stats(self, stats: pa.Table) -> list[int]:
        """Fold a commit's per-series summary into series_stats; return the series given their first row."""
        ids = stats.column("series_id").to_pylist()  # a few per tag, not per point
        known = pa.array([i in self._stats_known for i in ids])
        new = stats.filter(pc.invert(known))
        if new.num_rows:
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
        added: list[int] = new.column("series_id").to_pylist()
        return added

    def _save_extras(self, batches: Sequence[DecodedBatch]) -> None:
        """tag_info and custom_scalar_layouts: one row per (run, tag) and per run, the last batch's winning."""
        now = time.time()
        infos = {(b.run_id, i.tag): i for b in batches for i in b.tag_info}
        if infos:
            rows = pa.table(
                {
                    "run_id": [run for run, _ in infos],
                    "tag": [tag for _, tag in infos],
                    "display_name": [i.display_name for i in infos.values()],
                    "description": [i.description for i in infos.values()],
                    "updated_at": pa.array([now] * len(infos), pa.float64()),
                }
            )
            self._replace("tag_info", rows, ("run_id", "tag"))
        layouts = {b.run_id: b.custom_scalars_layout for b in batches if b.custom_scalars_layout is not None}
        if layouts:
            rows = pa.table(
                {
                    "run_id": list(layouts),
                    "layout": list(layouts.values()),
                    "updated_at": pa.array([now] * len(layouts), pa.float64()),
                }
            )
            self._replace("custom_scalar_layouts", rows, ("run_id",))

    def _replace(self, table: str, rows: pa.Table, key: tuple[str, ...]) -> None:
        """Put `rows` into `table` in place of the rows with the same key (no primary keys in this schema)."""
        self._con.register("replacing_rows", rows)
        try:
            match = " AND ".join(f"{table}.{k} = r.{k}" for k in key)
            self._con.execute(f"DELETE FROM {table} USING replacing_rows r WHERE {match}")
            self._con.execute(f"INSERT INTO {table} SELECT * FROM replacing_rows")
        finally:
            self._con.unregister("replacing_rows")

    def _save_seqs(self, seqs: Mapping[str, int], offsets: Mapping[str, int]) -> None:
        def table(writers: list[str]) -> pa.Table:
            return pa.table(
                {
                    "writer_id": writers,
                    "seq": pa.array([seqs[w] for w in writers], pa.uint64()),
                    "source_offset": pa.array([offsets.get(w, 0) for w in writers], pa.uint64()),
                }
            )

        known = [w for w in seqs if w in self._seqs]
        new = [w for w in seqs if w not in self._seqs]
        if new:
            insert_rows(self._con, "writer_progress", table(new))
        if known:
            self._con.register("seq_updates", table(known))
            try:
                self._con.execute(
                    "UPDATE writer_progress SET seq = u.seq, source_offset = u.source_offset FROM seq_updates u "
                    "WHERE writer_progress.writer_id = u.writer_id"
                )
            finally:
                self._con.unregister("seq_updates")

    def open_run(self, request: OpenRun) -> bool:
        if request.run_id in self._runs.deleted:
            raise RunDeleted(deleted_message(request.run_id))
        try:
            self._con.execute("BEGIN")
            created = self._open_run(request)
            self._con.execute("COMMIT")
        except BaseException:
            rollback(self._con)
            raise
        if created or request.rank == 0:  # created, or rank 0 rejoined (its project wins)
            self._runs = self._runs.with_project(request.run_id, request.project)
        self._ranks.add((request.run_id, request.rank))
        return created

    def _open_run(self, req: OpenRun) -> bool:
        con = self._con
        created = req.run_id not in self._runs
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

    def finish_run(self, request: FinishRun) -> None:
        if request.run_id not in self._runs:
            raise UnknownRun(f"run_id: run {request.run_id!r} is not open")
        try:
            self._con.execute("BEGIN")
            self._con.execute(
                "UPDATE run_ranks SET finished_at = ?, status = ? WHERE run_id = ? AND rank = ?",
                [request.end_time, request.status, request.run_id, request.rank],
            )
            if request.rank == 0:
                self._con.execute(
                    "UPDATE run_meta SET finished_at = ?, status = ? WHERE run_id = ?",
                    [request.end_time, request.status, request.run_id],
                )
            self._con.execute("COMMIT")
        except BaseException:
            rollback(self._con)
            raise

    def transact(self, job: Transaction) -> Any:
        if job.single is not None:
            result = job.single(self._con)  # one statement: committed by DuckDB as it returns
            if result is not NEEDS_TRANSACTION:
                return result
        try:
            self._con.execute("BEGIN")
            result = job.work(self._con)
            self._con.execute("COMMIT")
        except BaseException:
            rollback(self._con)
            raise
        if job.forget_runs:
            self._forget(job.forget_runs)
        return result

    def _forget(self, run_ids: tuple[str, ...]) -> None:
        """Drop deleted runs from the caches (their rows are gone): later batches of theirs are refused."""
        self._runs = self._runs.without(run_ids)
        self._ranks = {(run, rank) for run, rank in self._ranks if run not in run_ids}
        self._stats_known -= self.series_ids.drop_runs(run_ids)
        prefixes = tuple(importer_writer_prefix(run) for run in run_ids)
        self._seqs = {writer: seq for writer, seq in self._seqs.items() if not writer.startswith(prefixes)}

    def close(self) -> None:
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:  # pragma: no cover - the WAL still holds the data
            logger.warning("checkpoint at shutdown failed (%s); the WAL is replayed at next start", exc)


def _source_offsets(batches: Sequence[DecodedBatch], progress: Mapping[str, int]) -> dict[str, int]:
    """Each writer's source_offset as of its highest batch in this commit (the one `progress` records)."""
    return {b.writer_id: b.source_offset for b in batches if progress.get(b.writer_id) == b.seq}
