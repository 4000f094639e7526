"""The DuckDB file store: runs published as immutable snapshots; appends all or nothing."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from runstream_service.store.base import NEEDS_TRANSACTION, FinishRun, OpenRun, Transaction, UnknownRun
from runstream_service.store.file import FileStore
from runstream_service.validate import DecodedBatch, ScalarColumns


def _open(run_id: str, project: str, rank: int = 0) -> OpenRun:
    return OpenRun(run_id, project, run_id, "{}", rank, 2, "host", 0.0)


def _batch(seq: int, tag_index: list[int], tags: list[str] = ["loss"]) -> DecodedBatch:  # noqa: B006
    n = len(tag_index)
    columns = ScalarColumns(np.array(tag_index, np.uint32), np.arange(n), np.full(n, 1.0), np.full(n, 0.5))
    return DecodedBatch("r", 0, "w", seq, tags, columns, None, None)


def test_runs_are_published_as_new_snapshots() -> None:
    store = FileStore(duckdb.connect(":memory:"))
    before = store.runs
    assert store.open_run(_open("r", "vision"))
    after = store.runs
    assert "r" not in before and len(before) == 0  # a reader holding the old snapshot sees it unchanged
    assert "r" in after and after.project_of("r") == "vision"
    with pytest.raises(TypeError):
        after.projects["r"] = "other"  # type: ignore[index]
    assert not store.open_run(_open("r", "nlp", rank=1))  # another rank joins: the project stays
    assert store.runs.project_of("r") == "vision"
    store.open_run(_open("r", "nlp", rank=0))  # rank 0 rejoins: its project wins
    assert store.runs.project_of("r") == "nlp"
    assert after.project_of("r") == "vision"


def test_a_new_store_on_the_same_database_knows_its_runs_and_progress() -> None:
    con = duckdb.connect(":memory:")
    store = FileStore(con)
    store.open_run(_open("r", "vision"))
    store.append([_batch(1, [0, 0, 0])], {"w": 1})
    again = FileStore(con)
    assert again.runs.project_of("r") == "vision"
    assert again.committed_seq("w") == 1 and again.committed_seq("other") == 0


def test_a_failed_append_leaves_nothing() -> None:
    con = duckdb.connect(":memory:")
    store = FileStore(con)
    store.open_run(_open("r", "vision"))
    with pytest.raises(IndexError):
        store.append([_batch(1, [0, 5], tags=["new"])], {"w": 1})  # tag 5 does not exist
    assert store.committed_seq("w") == 0
    store.append([_batch(1, [0, 0], tags=["other"])], {"w": 1})
    assert con.execute("SELECT series_id, tag FROM series").fetchall() == [(0, "other")]
    assert con.execute("SELECT series_id, points FROM series_stats").fetchall() == [(0, 2)]
    store.append([_batch(2, [0])], {"w": 2})
    store.append([_batch(3, [0, 0], tags=["other"])], {"w": 3})
    assert con.execute("SELECT series_id, points FROM series_stats ORDER BY 1").fetchall() == [(0, 4), (1, 1)]
    assert con.execute("SELECT writer_id, seq FROM writer_progress").fetchall() == [("w", 3)]


def test_finishing_an_unknown_run() -> None:
    store = FileStore(duckdb.connect(":memory:"))
    with pytest.raises(UnknownRun):
        store.finish_run(FinishRun("nope", 0, "finished", 1.0))


def test_a_transaction_job_runs_as_one_statement_when_it_can() -> None:
    store = FileStore(duckdb.connect(":memory:"))
    store._con.execute("CREATE TABLE t (v INTEGER)")
    ran: list[str] = []

    def work(con: duckdb.DuckDBPyConnection) -> str:
        ran.append("work")
        con.execute("INSERT INTO t VALUES (1)")
        con.execute("INSERT INTO t VALUES (2)")
        return "work"

    def single(con: duckdb.DuckDBPyConnection) -> object:
        ran.append("single")
        con.execute("INSERT INTO t VALUES (9)")
        return "single"

    assert store.transact(Transaction(work, single=single)) == "single"
    assert ran == ["single"]  # the work was not needed
    assert store.transact(Transaction(work, single=lambda con: NEEDS_TRANSACTION)) == "work"
    assert ran == ["single", "work"]
    with pytest.raises(duckdb.Error):
        store.transact(Transaction(work, single=lambda con: con.execute("INSERT INTO t VALUES ('x')")))
    with pytest.raises(ZeroDivisionError):  # the work's transaction is rolled back whole
        store.transact(Transaction(lambda con: (con.execute("INSERT INTO t VALUES (3)"), 1 / 0)))
    assert sorted(r[0] for r in store._con.execute("SELECT v FROM t").fetchall()) == [1, 2, 9]
