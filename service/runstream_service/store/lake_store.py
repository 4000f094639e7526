"""The local side of the lake (store/lake.py): a Store that is the server's own file plus an outbox.

Every batch commits, in the same local transaction as its points, a row of ``lake_outbox_batches`` (its
``(writer_id, seq)``, a local key, its run, rank and tags) and its scalar points as numbers
(``lake_outbox_points``; the view ``lake_outbox_scalars`` reads them in the lake's shape), its points of
the other kinds (``lake_outbox_<point table>``, e.g. ``lake_outbox_histogram_points``), and what it says of
its tags and run (``lake_outbox_tag_info``, ``lake_outbox_layouts``); every opened or
finished run a row of ``lake_outbox_runs`` (numbered: the mover deletes the notes it moved, not a note
written meanwhile); every deleted run a row of ``lake_outbox_deletions``, in the delete's transaction;
every rename or label change the run's name and labels as they now are (``lake_outbox_labels``), in its
transaction.
The acknowledgement therefore means "in this server's file, and on its way to the lake"; the mover
(store/lake_mover.py) empties the outbox.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from runstream_service.store.base import FinishRun, OpenRun, RunsSnapshot, Store, Transaction
from runstream_service.store.kinds import Kind
from runstream_service.store.lake import LAKE, OTHER_KINDS, not_in_lake, value_columns, view_values
from runstream_service.store.tables import BUILDERS, Columns, KindPoints
from runstream_service.store.transactions import insert_rows
from runstream_service.validate import DecodedBatch

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS lake_outbox_batches (writer_id VARCHAR NOT NULL, seq UBIGINT NOT NULL, points BIGINT);
ALTER TABLE lake_outbox_batches ADD COLUMN IF NOT EXISTS batch_key BIGINT;
ALTER TABLE lake_outbox_batches ADD COLUMN IF NOT EXISTS run_id VARCHAR;
ALTER TABLE lake_outbox_batches ADD COLUMN IF NOT EXISTS rank INTEGER;
ALTER TABLE lake_outbox_batches ADD COLUMN IF NOT EXISTS tags VARCHAR[];
CREATE TABLE IF NOT EXISTS lake_outbox_points (
    batch_key BIGINT NOT NULL, tag_index INTEGER NOT NULL, step BIGINT, wall_time DOUBLE, value DOUBLE
);
CREATE TABLE IF NOT EXISTS lake_outbox_runs (
    run_id VARCHAR NOT NULL, rank INTEGER NOT NULL, note BIGINT, noted_at DOUBLE
);
ALTER TABLE lake_outbox_runs ADD COLUMN IF NOT EXISTS note BIGINT;
ALTER TABLE lake_outbox_runs ADD COLUMN IF NOT EXISTS noted_at DOUBLE;
CREATE TABLE IF NOT EXISTS lake_outbox_deletions (run_id VARCHAR NOT NULL, deleted_at DOUBLE NOT NULL);
CREATE TABLE IF NOT EXISTS lake_outbox_tag_info (
    batch_key BIGINT NOT NULL, run_id VARCHAR, tag VARCHAR, display_name VARCHAR, description VARCHAR, updated_at DOUBLE
);
CREATE TABLE IF NOT EXISTS lake_outbox_layouts (
    batch_key BIGINT NOT NULL, run_id VARCHAR, layout VARCHAR, updated_at DOUBLE
);
CREATE TABLE IF NOT EXISTS lake_outbox_labels (
    run_id VARCHAR NOT NULL, name VARCHAR, tags VARCHAR[], note VARCHAR, archived BOOLEAN, noted_at DOUBLE NOT NULL
);
"""
# (A column DEFAULT nextval(sequence) would number the notes, but DuckDB 1.5.5 then fails to replay its WAL
# after a crash: "GetDefaultDatabase with no default database set". The store numbers them itself.)

# A batch's points in the lake's shape. The points are stored as numbers only (the batch's key, the index of
# their tag in the batch's tags): with the writer id, run id and tag as strings on every row, putting them
# here took the writer about four times as long as the points' own insert (bench/lake.py's profile).
SCALARS_VIEW = """
CREATE OR REPLACE VIEW lake_outbox_scalars AS
SELECT b.writer_id, b.seq, b.run_id, list_extract(b.tags, p.tag_index + 1) AS tag, p.step, b.rank, p.wall_time,
       p.value
FROM lake_outbox_points p JOIN lake_outbox_batches b USING (batch_key)
"""


# The outbox's points whose batch the lake does not hold yet: exactly the acknowledged points not moved.
UNMOVED_SCALARS = (
    f"SELECT o.run_id, o.tag, o.step, o.rank, o.wall_time, o.value FROM lake_outbox_scalars o {not_in_lake('o')}"
)

LAKE_SCALARS_VIEW = f"""
CREATE OR REPLACE VIEW scalars AS
{UNMOVED_SCALARS}
UNION ALL
SELECT run_id, tag, step, rank, wall_time, value FROM {LAKE}.lake_scalars;
"""  # (show_the_lake); ReadScalars reads it too


def outbox_table(kind: Kind) -> str:
    """The outbox of `kind`'s points (not scalars'): the batch's key, the tag's index in the batch's tags, then
    the point table's columns after series_id."""
    return f"lake_outbox_{kind.table}"


def _kind_outbox_schema(kind: Kind) -> str:
    columns = ", ".join(f"{name} {kind_type}" for name, kind_type in value_columns(kind))
    return (
        f"CREATE TABLE IF NOT EXISTS {outbox_table(kind)} (batch_key BIGINT NOT NULL, tag_index INTEGER NOT NULL, "
        f"step BIGINT, rank INTEGER, wall_time DOUBLE, {columns});\n"
    )


def unmoved_sql(kind: Kind) -> str:
    """`kind`'s outbox points whose batch the lake does not hold yet, in the documented view's shape."""
    return (
        f"SELECT b.run_id, list_extract(b.tags, p.tag_index + 1) AS tag, p.step, p.rank, p.wall_time, "
        f"{view_values(kind, 'p.')} FROM {outbox_table(kind)} p JOIN lake_outbox_batches b USING (batch_key) "
        f"{not_in_lake('b')}"
    )


def create_outbox(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(OUTBOX_SCHEMA + "".join(_kind_outbox_schema(kind) for kind in OTHER_KINDS))
    _convert_strings_outbox(con)
    con.execute(SCALARS_VIEW)


def show_the_lake(con: duckdb.DuckDBPyConnection) -> None:
    """The file's documented views of points (store/schema.py's, replaced) read the unmoved outbox and the lake,
    so SQL and export on a lake server see every server's points. Scalars: the file keeps none of its own
    (server.py: FileStore(scalar_points=False)). The other kinds stay in the file's tables too, for its page.
    The outbox comes first: a query touching the file before the lake takes its local snapshot first, as
    store/lake_queries.py's exactness argument needs."""
    views = [LAKE_SCALARS_VIEW]
    for kind in OTHER_KINDS:
        views.append(
            f"CREATE OR REPLACE VIEW {kind.view} AS {unmoved_sql(kind)} UNION ALL SELECT * FROM {LAKE}.{kind.view};\n"
        )
    con.execute("".join(views))


def _convert_strings_outbox(con: duckdb.DuckDBPyConnection) -> None:
    """An outbox written by the first lake build (strings on every row, in a table named like today's view)
    becomes today's, rows unmoved included."""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'lake_outbox_scalars'"
    ).fetchall()
    if kind != [("BASE TABLE",)]:
        return
    con.execute("BEGIN")
    try:
        con.execute(
            "UPDATE lake_outbox_batches b SET batch_key = k.batch_key, run_id = k.run_id, rank = k.rank, tags = k.tags "
            "FROM (SELECT writer_id, seq, -row_number() OVER () AS batch_key, any_value(run_id) AS run_id, "
            "any_value(rank) AS rank, list(DISTINCT tag) AS tags FROM lake_outbox_scalars GROUP BY writer_id, seq) k "
            "WHERE b.writer_id = k.writer_id AND b.seq = k.seq"
        )
        con.execute(
            "INSERT INTO lake_outbox_points SELECT b.batch_key, list_position(b.tags, s.tag) - 1, s.step, "
            "s.wall_time, s.value FROM lake_outbox_scalars s JOIN lake_outbox_batches b USING (writer_id, seq)"
        )
        con.execute("DROP TABLE lake_outbox_scalars")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def outbox_points(batch: DecodedBatch, batch_key: int) -> pa.Table | None:
    """The batch's scalar points as lake_outbox_points rows, or None. Pure."""
    scalars = batch.scalars
    if scalars is None or len(scalars.step) == 0:
        return None
    n = len(scalars.step)
    return pa.table(
        {
            "batch_key": pa.array(np.full(n, batch_key, dtype=np.int64)),
            "tag_index": pa.array(scalars.tag_index.astype(np.int32, copy=False)),
            "step": pa.array(scalars.step, pa.int64()),
            "wall_time": pa.array(scalars.wall_time, pa.float64()),
            "value": pa.array(scalars.value, pa.float64()),
        }
    )


def outbox_kind_rows(batch: DecodedBatch, batch_key: int) -> dict[Kind, pa.Table]:
    """The batch's points of the other kinds, as their outbox tables' rows (kinds without points left out).
    The point table's builder (store/tables.py) makes them, given the tags' indices for series ids. Pure."""
    rows = {}
    for kind in OTHER_KINDS:
        columns: Columns | None = getattr(batch, kind.field)
        if columns is None or not len(columns.step):
            continue
        built = BUILDERS[kind.name]([KindPoints(batch.rank, columns.tag_index.astype(np.int32), columns)])
        keys = pa.array(np.full(built.num_rows, batch_key, dtype=np.int64))
        rows[kind] = built.rename_columns(["tag_index", *built.column_names[1:]]).add_column(0, "batch_key", keys)
    return rows


def _outbox_write(batch: DecodedBatch, batch_key: int, written: Callable[[int], None]) -> Transaction:
    rows = outbox_points(batch, batch_key)
    kind_rows = outbox_kind_rows(batch, batch_key)

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "INSERT INTO lake_outbox_batches (writer_id, seq, points, batch_key, run_id, rank, tags) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [batch.writer_id, batch.seq, batch.points, batch_key, batch.run_id, batch.rank, list(batch.tags)],
        )
        if rows is not None:
            insert_rows(con, "lake_outbox_points", rows)
        for kind, table in kind_rows.items():
            insert_rows(con, outbox_table(kind), table)
        now = time.time()  # (the file's tag_info and layouts take the commit's time too)
        for info in batch.tag_info:
            con.execute(
                "INSERT INTO lake_outbox_tag_info VALUES (?, ?, ?, ?, ?, ?)",
                [batch_key, batch.run_id, info.tag, info.display_name, info.description, now],
            )
        if batch.custom_scalars_layout is not None:
            con.execute(
                "INSERT INTO lake_outbox_layouts VALUES (?, ?, ?, ?)",
                [batch_key, batch.run_id, batch.custom_scalars_layout, now],
            )
        written(batch.points)

    return Transaction(work=work)


def _take_newer_labels(con: duckdb.DuckDBPyConnection, runs: list[str]) -> None:
    """This file's name and labels of `runs` replaced by the lake's where the lake's are newer (another
    server's rename or label change), so that a change here (adding a tag, say) starts from them."""
    marks = ", ".join("?" for _ in runs)
    newer = (
        f"SELECT n.* FROM {LAKE}.lake_run_labels n LEFT JOIN run_labels l USING (run_id) "
        f"WHERE n.run_id IN ({marks}) AND n.noted_at > coalesce(l.updated_at, 0)"
    )
    con.execute(f"UPDATE run_meta m SET name = n.name FROM ({newer}) n WHERE m.run_id = n.run_id", runs)
    con.execute(f"DELETE FROM run_labels WHERE run_id IN (SELECT run_id FROM ({newer}))", runs)
    con.execute(
        f"INSERT INTO run_labels SELECT run_id, tags, note, archived, noted_at FROM ({newer})",
        runs,
    )


@dataclass(frozen=True)
class LakeRun:
    """A run as the lake knows it (rank 0's metadata), for a server its ranks reach without OpenRun here."""

    project: str
    name: str
    config_json: str
    world_size: int
    host: str
    created_at: float


class LakeStore:
    """The Store (store/base.py) of a lake server: `inner` (the server's file) with the outbox written in
    each of its transactions.

    Its runs are the file's and the lake's: a writer that fails over from another server goes on here
    without opening its run again; its first batch or finish here opens the run locally from the lake's
    row (`lake_runs`, published whole by the mover thread after each move).
    """

    def __init__(self, inner: Store, con: duckdb.DuckDBPyConnection) -> None:
        create_outbox(con)
        show_the_lake(con)
        self._inner = inner
        self._con = con
        self.lake_runs: Mapping[str, LakeRun] = {}  # replaced whole by the mover; read here
        self.lake_deleted: frozenset[str] = frozenset()  # runs deleted in the lake (by any server): the mover's
        self._last_note: int = con.execute("SELECT coalesce(max(note), 0) FROM lake_outbox_runs").fetchall()[0][0]
        # Points put into the outbox since start (on the writer thread; a rolled-back batch's count too,
        # which the mover's next look at the outbox corrects): the mover's backlog between its moves.
        self.outboxed_points = 0
        self._last_batch_key: int = con.execute(
            "SELECT greatest(coalesce(max(batch_key), 0), 0) FROM lake_outbox_batches"
        ).fetchall()[0][0]
        self._merged: tuple[RunsSnapshot, Mapping[str, LakeRun], frozenset[str], RunsSnapshot] | None = None

    @property
    def runs(self) -> RunsSnapshot:
        inner, lake_runs, lake_deleted, merged = self._inner.runs, self.lake_runs, self.lake_deleted, self._merged
        if merged is not None and merged[0] is inner and merged[1] is lake_runs and merged[2] is lake_deleted:
            return merged[3]
        deleted = inner.deleted | lake_deleted
        extra = {run: r.project for run, r in lake_runs.items() if run not in inner and run not in deleted}
        if extra or not lake_deleted <= inner.deleted:
            projects = {run: p for run, p in {**extra, **inner.projects}.items() if run not in deleted}
            snapshot = RunsSnapshot.of(projects, deleted)
        else:
            snapshot = inner
        self._merged = (inner, lake_runs, lake_deleted, snapshot)
        return snapshot

    def _adopt(self, run_id: str, rank: int) -> None:
        """Open locally a run that only the lake knows (the writer's OpenRun went to another server)."""
        if run_id in self._inner.runs or (known := self.lake_runs.get(run_id)) is None:
            return
        self._inner.open_run(
            OpenRun(
                run_id,
                known.project,
                known.name,
                known.config_json,
                rank,
                known.world_size,
                known.host,
                known.created_at,
            )
        )

    def _batch_keys(self, count: int) -> range:
        """Keys for the next `count` batches (the writer thread's; a rolled-back batch's key is not reused)."""
        first = self._last_batch_key + 1
        self._last_batch_key += count
        return range(first, first + count)

    def _outboxed(self, points: int) -> None:
        self.outboxed_points += points

    def committed_seq(self, writer_id: str) -> int:
        return self._inner.committed_seq(writer_id)

    def append(self, batches: Sequence[DecodedBatch], progress: Mapping[str, int]) -> None:
        for batch in batches:
            self._adopt(batch.run_id, batch.rank)
        with_outbox = [
            dataclasses.replace(batch, with_commit=(*batch.with_commit, _outbox_write(batch, key, self._outboxed)))
            for batch, key in zip(batches, self._batch_keys(len(batches)), strict=True)
        ]
        self._inner.append(with_outbox, progress)

    def open_run(self, request: OpenRun) -> bool:
        created = self._inner.open_run(request)
        self._note_run(request.run_id, request.rank)
        return created

    def finish_run(self, request: FinishRun) -> None:
        self._adopt(request.run_id, request.rank)
        self._inner.finish_run(request)
        self._note_run(request.run_id, request.rank)

    def _note_run(self, run_id: str, rank: int) -> None:
        # Its own small commit after the run's: a crash between them loses only this note, and the mover
        # copies the runs of every batch it moves anyway. (It reads the run's rows from run_meta, run_ranks.)
        self._last_note += 1
        self._con.execute(
            "INSERT INTO lake_outbox_runs (run_id, rank, note, noted_at) VALUES (?, ?, ?, ?)",
            [run_id, rank, self._last_note, time.time()],
        )

    def transact(self, job: Transaction) -> Any:
        if job.labels_of:
            return self._inner.transact(self._with_labels_noted(job))
        if not job.forget_runs:
            return self._inner.transact(job)
        # A deletion (store/lifecycle.py; its job names the runs it deletes): a run only the lake knows is
        # opened here first, so that it is deleted as a local one is; the lake's deletion is noted in the
        # same transaction, for the mover.
        for run_id in job.forget_runs:
            self._adopt(run_id, 0)
        delete = job.work

        def work(con: duckdb.DuckDBPyConnection) -> Any:
            result = delete(con)
            now = time.time()
            for run_id in job.forget_runs:
                con.execute("INSERT INTO lake_outbox_deletions VALUES (?, ?)", [run_id, now])
            return result

        return self._inner.transact(dataclasses.replace(job, work=work, single=None))

    def _with_labels_noted(self, job: Transaction) -> Transaction:
        """A rename or label change: a run only the lake knows is opened here first (as for a deletion), and
        the run's name and labels as the change leaves them are noted in the same transaction, for the mover."""
        for run_id in job.labels_of:
            self._adopt(run_id, 0)
        change = job.work

        def work(con: duckdb.DuckDBPyConnection) -> Any:
            runs = list(job.labels_of)
            _take_newer_labels(con, runs)  # a change made on another server since is changed here, not undone
            result = change(con)
            con.execute(
                "INSERT INTO lake_outbox_labels SELECT m.run_id, m.name, coalesce(l.tags, CAST([] AS VARCHAR[])), "
                "coalesce(l.note, ''), coalesce(l.archived, false), ? FROM run_meta m LEFT JOIN run_labels l "
                f"USING (run_id) WHERE m.run_id IN ({', '.join('?' for _ in runs)})",
                [time.time(), *runs],
            )
            return result

        return dataclasses.replace(job, work=work, single=None)

    def close(self) -> None:
        self._inner.close()
