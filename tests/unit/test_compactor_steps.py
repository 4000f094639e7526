"""The compactor commits in steps of a range of series: no transaction grows with the database.

Checked on real DuckDB files in memory: the rollups are the same however the work is cut into
steps, each step is its own commit, a merge stopped between steps leaves every point counted once
at every level (and a later merge finishes the job), and the sizes in scalar_generations follow.
"""

from __future__ import annotations

import itertools
from unittest.mock import patch

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from runstream_service.settings import CompactionPolicy
from runstream_service.store import compactor as compactor_module
from runstream_service.store.compactor import FAN_IN, Compactor
from runstream_service.store.schema import create_schema

SERIES = 6


def _store() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_schema(con)
    for sid in range(1, SERIES + 1):
        con.execute("INSERT INTO series VALUES (?, 'r', 'scalar', ?)", [sid, f"t{sid}"])
    return con


def _arrive(con: duckdb.DuckDBPyConnection, part: int) -> None:
    """Part `part` of every series' points into the hot table (steps part*1000 .. part*1000+999)."""
    rng = np.random.default_rng(part)
    for sid in range(1, SERIES + 1):
        steps = np.arange(part * 1000, part * 1000 + 1000 - 37 * sid)
        rows = pa.table(
            {
                "series_id": np.full(steps.size, sid, np.int32),
                "step": steps.astype(np.int64),
                "rank": np.zeros(steps.size, np.int32),
                "wall_time": 1.7e9 + steps.astype(np.float64),
                "value": rng.standard_normal(steps.size),
            }
        )
        con.register("rows", rows)
        con.execute("INSERT INTO scalar_points_hot SELECT * FROM rows")
        con.unregister("rows")


def _generations(con: duckdb.DuckDBPyConnection) -> Compactor:
    """FAN_IN generations, each from its own compaction; no merge yet."""
    compactor = Compactor(con, CompactionPolicy(hot_points=10**9))
    for part in range(FAN_IN):
        _arrive(con, part)
        compactor._compact_hot()
    return compactor


def _rollups(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    """Each bucket's partials summed over generations (what a read combines), for comparing stores."""
    return con.execute(
        "SELECT series_id, level, bucket, sum(points), sum(numbers), round(sum(sum), 9), min(first_step), "
        "max(last_step) FROM scalar_rollups GROUP BY ALL ORDER BY ALL"
    ).fetchall()


def _whole() -> duckdb.DuckDBPyConnection:
    con = _store()
    compactor = _generations(con)
    compactor._merge(sorted(compactor._generations))
    return con


def test_a_merge_in_steps_writes_the_same_points_and_rollups_as_in_one() -> None:
    whole = _whole()
    with patch.object(compactor_module, "CHUNK_POINTS", 1):  # every series a step of its own
        con = _store()
        compactor = _generations(con)
        commits = _count_commits(con, lambda: compactor._merge(sorted(compactor._generations)))
    assert commits == SERIES
    assert _rollups(con) == _rollups(whole)
    points = "SELECT series_id, step, rank, value FROM scalar_points ORDER BY ALL"
    assert con.execute(points).fetchall() == whole.execute(points).fetchall()
    assert con.execute("SELECT DISTINCT generation FROM scalar_points").fetchall() == [(FAN_IN + 1,)]
    assert con.execute("SELECT generation, points FROM scalar_generations").fetchall() == [
        (FAN_IN + 1, con.execute("SELECT count(*) FROM scalar_points").fetchall()[0][0])
    ]


@pytest.mark.parametrize("coarse_rows", [1, 10**9])
def test_a_merges_coarse_levels_are_written_level_by_level(coarse_rows: int) -> None:
    with (
        patch.object(compactor_module, "CHUNK_POINTS", 1),
        patch.object(compactor_module, "COARSE_ROWS", coarse_rows),
    ):
        con = _store()
        compactor = _generations(con)
        compactor._merge(sorted(compactor._generations))
    levels = [level for (level,) in con.execute("SELECT level FROM scalar_rollups ORDER BY rowid").fetchall()]
    coarse = [level for level in levels if level >= compactor_module.COARSE_LEVEL]
    runs = sum(1 for a, b in itertools.pairwise(coarse) if b < a) + 1
    assert runs == 1 if coarse_rows == 10**9 else runs == SERIES
    assert _rollups(con) == _rollups(_whole())


def test_a_compaction_in_steps_is_a_commit_per_step_with_the_same_rollups() -> None:
    whole = _store()
    _arrive(whole, 0)
    Compactor(whole, CompactionPolicy(hot_points=10**9))._compact_hot()
    with patch.object(compactor_module, "CHUNK_POINTS", 1):
        con = _store()
        _arrive(con, 0)
        compactor = Compactor(con, CompactionPolicy(hot_points=10**9))
        assert _count_commits(con, compactor._compact_hot) == SERIES
    assert _rollups(con) == _rollups(whole)
    assert con.execute("SELECT count(*) FROM scalar_points_hot").fetchall() == [(0,)]
    assert compactor._generations == {1: con.execute("SELECT count(*) FROM scalar_points").fetchall()[0][0]}


def test_a_merge_stopped_between_steps_counts_every_point_once_and_is_finished_by_a_later_merge() -> None:
    whole = _whole()
    with patch.object(compactor_module, "CHUNK_POINTS", 1):
        con = _store()
        compactor = _generations(con)
        merged = sorted(compactor._generations)
        real = compactor._move_chunk
        steps = 0

        def stop_after_three(*args: object) -> int:
            nonlocal steps
            steps += 1
            if steps > 3:
                raise compactor_module.Stopping("the server is stopping")
            return real(*args)  # type: ignore[arg-type]

        with patch.object(compactor, "_move_chunk", stop_after_three), pytest.raises(compactor_module.Stopping):
            compactor._merge(merged)
        # Between steps: some series in the new generation, the rest in the old ones; each point once.
        assert _rollups(con) == _rollups(whole)
        sizes = dict(con.execute("SELECT generation, points FROM scalar_generations").fetchall())
        assert sum(sizes.values()) == con.execute("SELECT count(*) FROM scalar_points").fetchall()[0][0]
        assert len(sizes) == FAN_IN + 1
        restarted = Compactor(con, CompactionPolicy(hot_points=10**9))
        assert restarted._generations == sizes
        restarted._merge(sorted(sizes))
    assert _rollups(con) == _rollups(whole)
    assert len(con.execute("SELECT * FROM scalar_generations").fetchall()) == 1


def _count_commits(con: duckdb.DuckDBPyConnection, work: object) -> int:
    """How many transactions `work` committed (each step ends in COMMIT on the compactor's cursor)."""
    commits = 0
    original = duckdb.DuckDBPyConnection.execute

    def counting(self: duckdb.DuckDBPyConnection, query: object, *args: object) -> object:
        nonlocal commits
        if query == "COMMIT":
            commits += 1
        return original(self, query, *args)  # type: ignore[arg-type]

    with patch.object(duckdb.DuckDBPyConnection, "execute", counting):
        work()  # type: ignore[operator]
    return commits


def test_points_piling_up_in_the_hot_table_are_compacted_between_a_merges_steps() -> None:
    with patch.object(compactor_module, "CHUNK_POINTS", 1):
        con = _store()
        compactor = _generations(con)
        merged = sorted(compactor._generations)
        _arrive(con, FAN_IN)  # arrives while the merge runs ...
        compactor.notify(10**9)  # ... and more than burst_hot_points wait
        compactor._merge(merged)
    assert con.execute("SELECT count(*) FROM scalar_points_hot").fetchall() == [(0,)]
    sizes = dict(con.execute("SELECT generation, points FROM scalar_generations").fetchall())
    assert sorted(sizes) == [FAN_IN + 1, FAN_IN + 2]  # the merge's own, then the compaction's
    assert sum(sizes.values()) == con.execute("SELECT count(*) FROM scalar_points").fetchall()[0][0]
    whole = _whole()
    _arrive(whole, FAN_IN)
    Compactor(whole, CompactionPolicy(hot_points=10**9))._compact_hot()
    assert _rollups(con) == _rollups(whole)


def test_a_compactions_steps_are_counted_again_as_points_keep_arriving() -> None:
    con = _store()
    _arrive(con, 0)  # about 1,000 points per series
    compactor = Compactor(con, CompactionPolicy(hot_points=10**9))
    real = compactor._move_chunk
    sizes: list[int] = []
    firsts: list[int] = []

    def step(*args: object) -> int:
        moved = real(*args)  # type: ignore[arg-type]
        firsts.append(args[0].last)  # type: ignore[attr-defined]
        if not sizes:
            for part in range(1, 6):  # after the first step, each series grows to about 6,000 points
                _arrive(con, part)
        sizes.append(moved)
        return moved

    with patch.object(compactor_module, "CHUNK_POINTS", 2500), patch.object(compactor, "_move_chunk", step):
        compactor._compact_hot()
    largest = max(n for (n,) in con.execute("SELECT count(*) FROM scalar_points GROUP BY series_id").fetchall())
    assert all(moved < 2500 + largest for moved in sizes), sizes  # planned from the first count: 3 series of 6,000
    # What arrived for the series of the first step waits for the next compaction; the rest was moved.
    assert con.execute("SELECT max(series_id) FROM scalar_points_hot").fetchall() == [(firsts[0],)]
    assert sum(sizes) == con.execute("SELECT count(*) FROM scalar_points").fetchall()[0][0]
