"""A run's name and labels on a lake: a rename or label change on any server reaches the lake and every
server's runs list; the newest change wins whichever mover moves first; a change starts from the newest.

Played without gRPC, on the stores and movers of tests/lake/test_lake_exactly_once.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import lake_query
from test_lake_exactly_once import LakeServer

from runstream_service.store import lifecycle
from runstream_service.store.base import FinishRun, Transaction
from runstream_service.store.lake import LakeConfig
from runstream_service.store.lake_queries import LakeReads


def listed(server: LakeServer) -> tuple[Any, ...]:
    (run,) = [r for r in LakeReads().list_runs(server.con.cursor(), None, None, {}) if r["run_id"] == "run"]
    return run["name"], run["tags"], run["note"], run["archived"]


def rename(server: LakeServer, name: str) -> None:
    server.store.transact(Transaction(lambda con: lifecycle.rename_run(con, "run", name), labels_of=("run",)))


def label(server: LakeServer, **changes: Any) -> None:
    server.store.transact(Transaction(lambda con: lifecycle.set_labels(con, "run", **changes), labels_of=("run",)))


def test_a_rename_and_labels_reach_every_server_and_the_newest_wins(tmp_path: Path, lake_config: LakeConfig) -> None:
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    b = LakeServer(tmp_path / "b.duckdb", lake_config, "b", open_run=False)
    a.commit(1)
    a.mover.move_once()
    assert listed(b) == ("run", [], "", False)

    rename(a, "renamed")
    label(a, tags=["x"], note="from a")
    assert listed(a) == ("renamed", ["x"], "from a", False)  # A's own change, before its move
    assert listed(b) == ("run", [], "", False)
    a.mover.move_once()
    assert listed(b) == ("renamed", ["x"], "from a", False)
    assert lake_query(lake_config, "SELECT name, tags, archived FROM lake.runs") == [("renamed", ["x"], False)]

    # B's change starts from A's (its own file had neither the run nor its labels): a tag added, the rest kept
    b.store.lake_runs = b.mover.lake_runs()  # as a server's mover publishes them (after moves, every 2 s)
    label(b, add_tags=["y"])
    assert listed(b) == ("renamed", ["x", "y"], "from a", False)

    # newest wins whichever mover moves first: A's older change is moved after B's newer one
    label(a, note="older, from a")
    time.sleep(0.01)
    label(b, archived=True)
    b.mover.move_once()
    a.mover.move_once()
    assert listed(a) == listed(b) == ("renamed", ["x", "y"], "from a", True)

    # a run note from a server with the old name (B's finish) does not undo the rename
    b.store.finish_run(FinishRun("run", 0, "finished", time.time()))
    b.mover.move_once()
    assert lake_query(lake_config, "SELECT name, status FROM lake.runs") == [("renamed", "finished")]


def test_a_deleted_run_leaves_its_labels_out_of_the_lake(tmp_path: Path, lake_config: LakeConfig) -> None:
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    a.commit(1)
    label(a, tags=["gone"])
    a.mover.move_once()
    assert lake_query(lake_config, "SELECT count(*) FROM lake.lake_run_labels") == [(1,)]
    a.store.transact(Transaction(lambda con: lifecycle.delete_run(con, "run", "tester"), forget_runs=("run",)))
    a.mover.move_once()
    assert lake_query(lake_config, "SELECT count(*) FROM lake.lake_run_labels") == [(0,)]
