"""The compactor reads time from its injected clock only: hot points wait `hot_seconds` by that clock."""

from __future__ import annotations

import duckdb

from runstream_service.settings import CompactionPolicy
from runstream_service.store.compactor import Compactor
from runstream_service.store.schema import create_schema


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _compactor_with_hot_points(clock: Clock, points: int) -> tuple[Compactor, duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    create_schema(con)
    con.execute(
        "INSERT INTO series VALUES (0, 'run', 'scalar', 'loss');"
        f"INSERT INTO scalar_points_hot SELECT 0, i, 0, 1.7e9 + i, i * 0.5 FROM range({points}) t(i)"
    )
    policy = CompactionPolicy(hot_points=1_000_000, hot_seconds=5.0)
    return Compactor(con, policy, clock=clock), con


def test_few_hot_points_wait_hot_seconds_by_the_injected_clock() -> None:
    clock = Clock()
    compactor, con = _compactor_with_hot_points(clock, 1_000)
    compactor.notify(1_000)
    compactor._step()
    assert compactor.stats.compactions == 0  # no time has passed on the fake clock
    clock.now += 4.9
    compactor._step()
    assert compactor.stats.compactions == 0
    clock.now += 0.2
    compactor._step()
    assert compactor.stats.compactions == 1
    hot, compacted = con.execute(
        "SELECT (SELECT count(*) FROM scalar_points_hot), (SELECT count(*) FROM scalar_points)"
    ).fetchall()[0]
    assert (hot, compacted) == (0, 1_000)


def test_the_wait_restarts_at_the_last_compaction() -> None:
    clock = Clock()
    compactor, con = _compactor_with_hot_points(clock, 10)
    clock.now += 6.0
    compactor.notify(10)
    compactor._step()
    assert compactor.stats.compactions == 1
    con.execute("INSERT INTO scalar_points_hot VALUES (0, 10, 0, 1.7e9, 1.0)")
    compactor.notify(1)
    clock.now += 1.0
    compactor._step()
    assert compactor.stats.compactions == 1  # a second after the last compaction
    clock.now += 5.0
    compactor._step()
    assert compactor.stats.compactions == 2
