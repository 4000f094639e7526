"""Exactly once across servers, played without gRPC: two servers' stores and movers on one lake.

The interleaving of issue 17: server A acknowledges a writer's seq 5 and dies before moving it; the
writer goes on at server B, which commits and moves seq 6; A comes back and moves seq 5, which must land
(a "highest seq per writer" rule would drop it). And a batch both servers committed (A's ack was lost and
the writer replayed it to B) lands once, as does a move interrupted between its lake and local commits.
A server that comes back with an old note of a run (its OpenRun) does not undo the run's finish elsewhere,
and a run deleted on one server leaves the lake, other servers' unmoved points of it included.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
from conftest import lake_query

from runstream._encode import encode_batch
from runstream_service.store import lake, lifecycle
from runstream_service.store.base import FinishRun, OpenRun, Transaction
from runstream_service.store.file import FileStore
from runstream_service.store.lake import LakeConfig
from runstream_service.store.lake_mover import Mover
from runstream_service.store.lake_store import LakeStore
from runstream_service.validate import DecodedBatch, decode_batch

WRITER = "writer-1"
STEPS_PER_BATCH = 10


class LakeServer:
    """What a lake server keeps: its file, the store with the outbox, the mover (not started: moves on demand)."""

    def __init__(self, data: Path, config: LakeConfig, name: str, open_run: bool = True) -> None:
        self.con = duckdb.connect(str(data), config={"enable_external_access": True})
        lake.attach(self.con, config)
        lake.create_schema(self.con)
        self.store = LakeStore(FileStore(self.con), self.con)
        self.mover = Mover(self.con, config, server=name)
        if open_run:
            self.store.open_run(OpenRun("run", "p", "run", "{}", 0, 1, "host", 0.0))

    def commit(self, seq: int) -> None:
        self.store.append([batch(seq)], {WRITER: seq})

    def crash(self) -> None:
        self.mover._pg.close()  # the session lock, if any, goes with its connection
        self.con.close()


def batch(seq: int) -> DecodedBatch:
    steps = range(seq * STEPS_PER_BATCH, (seq + 1) * STEPS_PER_BATCH)
    packed = [(step, 1.0, ["loss"], np.array([float(step)], "<f8").tobytes()) for step in steps]
    return decode_batch(encode_batch("run", 0, WRITER, seq, packed).message)


def lake_steps(config: LakeConfig) -> list[tuple[int, int]]:
    rows = lake_query(config, "SELECT step, count(*) FROM lake.scalars GROUP BY step ORDER BY step")
    return [(int(str(step)), int(str(n))) for step, n in rows]


def expected(seqs: range) -> list[tuple[int, int]]:
    return [(step, 1) for seq in seqs for step in range(seq * STEPS_PER_BATCH, (seq + 1) * STEPS_PER_BATCH)]


def test_acknowledged_batch_moved_after_a_later_seq_lands(tmp_path: Path, lake_config: LakeConfig) -> None:
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    for seq in range(1, 5):
        a.commit(seq)
    a.mover.move_once()
    a.commit(5)  # acknowledged by A, not moved
    a.crash()
    b = LakeServer(tmp_path / "b.duckdb", lake_config, "b")
    b.commit(6)  # the writer went on at B
    assert b.mover.move_once().moved == 1
    assert lake_steps(lake_config) == expected(range(1, 5)) + expected(range(6, 7))
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")  # A comes back
    assert a.mover.move_once().moved == 1
    assert lake_steps(lake_config) == expected(range(1, 7))
    keys = lake_query(lake_config, "SELECT seq, count(*) FROM lake.lake_batches GROUP BY seq ORDER BY seq")
    assert keys == [(seq, 1) for seq in range(1, 7)]


def test_batch_committed_by_both_servers_lands_once(tmp_path: Path, lake_config: LakeConfig) -> None:
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    b = LakeServer(tmp_path / "b.duckdb", lake_config, "b")
    a.commit(1)
    b.commit(1)  # A's ack was lost: the writer replayed seq 1 to B
    b.commit(2)
    assert b.mover.move_once().moved == 2
    move = a.mover.move_once()
    assert (move.moved, move.already) == (0, 1)
    assert lake_steps(lake_config) == expected(range(1, 3))
    assert a.con.execute("SELECT count(*) FROM lake_outbox_scalars").fetchall() == [(0,)]


def test_move_interrupted_before_its_local_commit_moves_nothing_twice(tmp_path: Path, lake_config: LakeConfig) -> None:
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    a.commit(1)
    a.mover._from_outbox = lambda cur, kinds: None  # type: ignore[method-assign]  # dies after the lake's commit
    a.mover.move_once()
    a.crash()
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    assert a.con.execute("SELECT count(*) FROM lake_outbox_batches").fetchall() == [(1,)]
    assert a.mover.move_once().already == 1
    assert lake_steps(lake_config) == expected(range(1, 2))
    assert lake_query(lake_config, "SELECT run_id, name, status FROM lake.runs") == [("run", "run", "running")]


def test_a_stale_run_note_does_not_undo_a_finish_moved_by_another_server(
    tmp_path: Path, lake_config: LakeConfig
) -> None:
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")  # the run opened at A; its note is not moved
    a.crash()
    b = LakeServer(tmp_path / "b.duckdb", lake_config, "b")  # the writer went on at B, and finished there
    b.commit(1)
    b.store.finish_run(FinishRun("run", 0, "finished", 10.0))
    b.mover.move_once()
    status = "SELECT status, finished_at IS NOT NULL FROM lake.runs"
    assert lake_query(lake_config, status) == [("finished", True)]
    assert lake_query(lake_config, "SELECT rank, status FROM lake.run_ranks") == [(0, "finished")]
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a", open_run=False)  # A comes back with its old note
    a.mover.move_once()
    assert lake_query(lake_config, status) == [("finished", True)]
    assert lake_query(lake_config, "SELECT rank, status FROM lake.run_ranks") == [(0, "finished")]
    assert a.con.execute("SELECT count(*) FROM lake_outbox_runs").fetchall() == [(0,)]


def test_a_run_deleted_on_one_server_leaves_the_lake_and_stays_out(tmp_path: Path, lake_config: LakeConfig) -> None:
    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    b = LakeServer(tmp_path / "b.duckdb", lake_config, "b")
    a.commit(1)
    a.mover.move_once()
    b.commit(2)  # B's points of the run, not moved yet
    a.commit(3)
    a.store.transact(Transaction(lambda con: lifecycle.delete_run(con, "run", "tester"), forget_runs=("run",)))
    a.mover.move_once()
    assert lake_query(lake_config, "SELECT run_id, server FROM lake.deleted_runs") == [("run", "a")]
    assert lake_steps(lake_config) == []
    assert lake_query(lake_config, "SELECT count(*) FROM lake.runs") == [(0,)]
    b.mover.move_once()  # left out: the run is deleted in the lake
    assert lake_steps(lake_config) == []
    assert lake_query(lake_config, "SELECT count(*) FROM lake.runs") == [(0,)]
    assert b.con.execute("SELECT count(*) FROM lake_outbox_scalars").fetchall() == [(0,)]
    b.store.lake_deleted = b.mover.lake_deleted()  # as the mover thread publishes it after a move
    assert "run" in b.store.runs.deleted and "run" not in b.store.runs


def test_folded_batch_keys_still_count_as_moved(tmp_path: Path, lake_config: LakeConfig) -> None:
    """Maintenance folds a writer's unbroken seqs 1..N into its mark and drops their keys from lake_batches;
    a replay of a folded seq is then still in the lake (moved nothing, read once), a gap stops the mark."""
    from runstream_service.store.lake_queries import LakeReads

    a = LakeServer(tmp_path / "a.duckdb", lake_config, "a")
    for seq in (1, 2, 3, 5):  # 4 is missing: acknowledged elsewhere, not moved yet
        a.commit(seq)
    a.mover.move_once()
    assert a.mover.fold_batch_keys() == 3
    assert lake_query(lake_config, "SELECT writer_id, seq_done FROM lake.lake_writer_marks") == [(WRITER, 3)]
    assert lake_query(lake_config, "SELECT seq FROM lake.lake_batches") == [(5,)]
    assert a.mover.fold_batch_keys() == 0  # the gap at 4 holds the mark

    b = LakeServer(tmp_path / "b.duckdb", lake_config, "b")
    b.commit(2)  # a replay of a folded seq, committed by another server
    b.commit(4)

    def count() -> int:
        ((_, found),) = LakeReads().scalar_series(b.con.cursor(), ["run"], "loss", "step", None, None, 10_000)
        return int(found.count)

    assert count() == 5 * STEPS_PER_BATCH  # seq 2 of B's outbox is not counted again
    move = b.mover.move_once()
    assert (move.moved, move.already) == (1, 1)
    assert lake_steps(lake_config) == expected(range(1, 6))
    assert count() == 5 * STEPS_PER_BATCH
    assert b.mover.fold_batch_keys() == 2  # 4 and 5: the mark reaches 5
    assert lake_query(lake_config, "SELECT seq_done FROM lake.lake_writer_marks") == [(5,)]
    assert lake_query(lake_config, "SELECT count(*) FROM lake.lake_batches") == [(0,)]
    b.commit(6)
    b.mover.move_once()
    assert b.mover.maintain()  # folds under the movers' lock, then DuckLake's own file maintenance
    assert lake_query(lake_config, "SELECT seq_done FROM lake.lake_writer_marks") == [(6,)]
    assert lake_steps(lake_config) == expected(range(1, 7))
