"""store/lifecycle.py on a real DuckDB file: a delete removes every row a run owns and nothing else."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from runstream_service.errors import BadRequest, NotFound
from runstream_service.store import lifecycle
from runstream_service.store.kinds import KINDS
from runstream_service.store.schema import create_schema

# One value per column type, enough to fill a row of any table.
_SAMPLE = {
    "VARCHAR": "'x'",
    "BLOB": "'\\x00'::BLOB",
    "DOUBLE": "1.5",
    "FLOAT": "1.5",
    "BIGINT": "1",
    "UBIGINT": "1",
    "INTEGER": "1",
    "TINYINT": "4",
    "BOOLEAN": "false",
    "JSON": "'{}'",
    "DOUBLE[]": "[1.0, 2.0]",
    "FLOAT[]": "[1.0]",
    "INTEGER[]": "[0]",
    "BIGINT[]": "[1]",
    "UTINYINT[]": "[1]",
    "VARCHAR[]": "['a']",
}


def _insert(con: duckdb.DuckDBPyConnection, table: str, **given: object) -> None:
    columns = con.execute(f"DESCRIBE {table}").fetchall()
    values = []
    for name, kind, *_ in columns:
        if name in given:
            values.append(given[name])
        else:
            values.append(duckdb_literal(_SAMPLE[kind]))
    con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in values)})", values)


_LITERALS = duckdb.connect()


def duckdb_literal(sql: str) -> object:
    return _LITERALS.execute(f"SELECT {sql}").fetchall()[0][0]


def _run(con: duckdb.DuckDBPyConnection, run_id: str, first_series: int) -> None:
    """A run with one series of every kind, compacted scalars and rollups, labels and extras."""
    _insert(con, "run_meta", run_id=run_id, project="p", name=f"name-{run_id}", status="running", config="{}")
    _insert(con, "run_ranks", run_id=run_id)
    _insert(con, "run_labels", run_id=run_id)
    _insert(con, "tag_info", run_id=run_id)
    _insert(con, "custom_scalar_layouts", run_id=run_id)
    _insert(con, "writer_progress", writer_id=f"{run_id}-p-events.1")
    for i, kind in enumerate(KINDS):
        sid = first_series + i
        _insert(con, "series", series_id=sid, run_id=run_id, kind=kind.name, tag="t")
        _insert(con, kind.table, series_id=sid)
        _insert(con, "series_stats", series_id=sid)
    _insert(con, "scalar_points", series_id=first_series, generation=1)
    _insert(con, "scalar_points", series_id=first_series, generation=1)
    _insert(con, "scalar_rollups", series_id=first_series, generation=1)


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "runstream.duckdb"))
    create_schema(con)
    con.execute("BEGIN")
    _insert(con, "scalar_generations", generation=1, points=4)
    _run(con, "gone", 0)
    _run(con, "kept", 100)
    con.execute("COMMIT")
    return con


def _rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in lifecycle.RUN_TABLES}


def test_every_table_is_accounted_for(con: duckdb.DuckDBPyConnection) -> None:
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == set(lifecycle.RUN_TABLES) | set(lifecycle.NOT_RUN_TABLES)
    assert not set(lifecycle.RUN_TABLES) & set(lifecycle.NOT_RUN_TABLES)


def test_delete_removes_every_row_of_the_run_and_nothing_else(con: duckdb.DuckDBPyConnection) -> None:
    before = _rows(con)
    deleted = lifecycle.delete_run(con, "gone", "token abcd1234", now=1000.0)
    assert deleted.points == len(KINDS) + 2  # a point of every kind, two compacted scalars
    after = _rows(con)
    for table in lifecycle.RUN_TABLES:
        assert after[table] * 2 == before[table], table  # exactly the other run's half is left
    kept = con.execute("SELECT count(*) FROM scalars WHERE run_id = 'kept'").fetchall()[0][0]
    assert kept == 3
    assert con.execute("SELECT points FROM scalar_generations").fetchall() == [(2,)]
    assert con.execute("SELECT run_id, name, points, deleted_by, epoch(deleted_at) FROM run_deletions").fetchall() == [
        ("gone", "name-gone", len(KINDS) + 2, "token abcd1234", 1000.0)
    ]
    assert lifecycle.deleted_run_ids(con) == {"gone"}
    with pytest.raises(lifecycle.RunDeleted, match="was deleted"):
        lifecycle.delete_run(con, "gone", "cli --data")
    with pytest.raises(NotFound, match="no run 'never'"):
        lifecycle.rename_run(con, "never", "x")


def test_sdk_writers_progress_is_kept(con: duckdb.DuckDBPyConnection) -> None:
    _insert(con, "writer_progress", writer_id="0123456789abcdef")
    lifecycle.delete_run(con, "gone", "cli --data")
    left = {w for (w,) in con.execute("SELECT writer_id FROM writer_progress").fetchall()}
    assert left == {"kept-p-events.1", "0123456789abcdef"}


def test_rename_tags_note_archive(con: duckdb.DuckDBPyConnection) -> None:
    lifecycle.rename_run(con, "kept", "better name")
    lifecycle.set_labels(con, "kept", tags=[], add_tags=["baseline", "lr-sweep", "baseline"])
    lifecycle.set_labels(con, "kept", remove_tags=["lr-sweep"], note="first try")
    lifecycle.set_labels(con, "kept", archived=True)
    row = con.execute("SELECT name, tags, note, archived FROM runs WHERE run_id = 'kept'").fetchall()
    assert row == [("better name", ["baseline"], "first try", True)]
    assert [r["run_id"] for r in lifecycle.list_runs(con, "p")] == ["gone"]
    assert {r["run_id"] for r in lifecycle.list_runs(con, "p", archived=True)} == {"gone", "kept"}
    with pytest.raises(BadRequest, match="without commas"):
        lifecycle.set_labels(con, "kept", add_tags=["a,b"])
    with pytest.raises(BadRequest, match="non-empty"):
        lifecycle.rename_run(con, "kept", " ")


def test_a_run_without_labels_has_none_in_the_view(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DELETE FROM run_labels")
    assert con.execute("SELECT tags, note, archived FROM runs WHERE run_id = 'kept'").fetchall() == [([], "", False)]


def test_crashed_and_back(con: duckdb.DuckDBPyConnection) -> None:
    assert lifecycle.mark_crashed(con, ["gone", "never"]) == ["gone"]
    assert lifecycle.mark_crashed(con, ["gone"]) == []
    assert lifecycle.crashed_run_ids(con) == ["gone"]
    assert lifecycle.mark_running(con, ["gone"]) == ["gone"]
    assert con.execute("SELECT status FROM runs WHERE run_id = 'gone'").fetchall() == [("running",)]


def test_a_delete_that_meets_the_compactor_is_retried_and_finds_the_moved_points(tmp_path: Path) -> None:
    """The compactor (its own cursor) has moved the run's hot points but not committed yet: the delete
    conflicts, is rolled back and retried, and then removes the points where the compactor put them."""
    import asyncio

    from runstream_service.run_actions import RunActions
    from runstream_service.store.base import Transaction
    from runstream_service.store.file import FileStore

    con = duckdb.connect(str(tmp_path / "runstream.duckdb"))
    create_schema(con)
    con.execute("INSERT INTO run_meta VALUES ('r', 'p', 'r', '{}', 'running', 0, NULL, 'h', 1)")
    con.execute("INSERT INTO series VALUES (0, 'r', 'scalar', 'loss')")
    con.execute("INSERT INTO scalar_points_hot SELECT 0, range, 0, 1.0, 0.5 FROM range(1000)")
    store = FileStore(con)
    compactor = con.cursor()
    compactor.execute("BEGIN")
    compactor.execute("INSERT INTO scalar_points SELECT *, 1 FROM scalar_points_hot")
    compactor.execute("DELETE FROM scalar_points_hot")
    attempts = []

    async def submit(job: Transaction) -> object:
        attempts.append(job)
        try:
            return store.transact(job)
        finally:
            if len(attempts) == 1:
                compactor.execute("COMMIT")  # the compactor finishes meanwhile

    actions = RunActions(submit, lambda: store.runs)
    deleted = asyncio.run(actions.delete("r", "test"))
    assert deleted["points"] == 1000
    assert len(attempts) == 3  # the conflicting delete, the one that went through, a checkpoint
    assert con.execute("SELECT count(*) FROM scalars").fetchall() == [(0,)]
    assert "r" not in store.runs and "r" in store.runs.deleted
