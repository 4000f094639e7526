"""The user-SQL watchdog: its pure rules, one sample at a time with a fake clock and resident memory,
and real DuckDB queries stopped by it (memory budget, time limit) with the 400 that says why."""

from __future__ import annotations

import time
from typing import Any

import duckdb
import pytest

from runstream_service.store.readonly_sql import SqlMemory, SqlTimeout, run_read_only
from runstream_service.watchdog import (
    MARGIN,
    NEAR_BOUND,
    OVER_BUDGET,
    PROCESS_OVERHEAD,
    REPEAT_SECONDS,
    TIMEOUT,
    MemoryBudget,
    MemoryRefused,
    SqlWatchdog,
    parse_size,
    process_rss_bytes,
    verdict,
)

GIB = 1 << 30
HUNGRY = "SELECT max(len(l)) FROM (SELECT list(range) l FROM range(400000000))"


def test_sizes_as_duckdb_prints_and_takes_them() -> None:
    assert parse_size("1.8 GiB") == int(1.8 * GIB)
    assert parse_size("2GB") == 2 * 10**9
    assert parse_size("512 MiB") == 512 << 20
    assert parse_size("0 bytes") == 0
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_the_budget_follows_duckdbs_memory_limit() -> None:
    budget = MemoryBudget.for_memory_limit(2 * GIB)
    assert budget.process_bytes == 2 * GIB + PROCESS_OVERHEAD
    assert budget.sql_bytes == GIB // 2
    assert MemoryBudget.for_memory_limit(0).sql_bytes == 16 << 20  # never nothing at all


def test_verdict() -> None:
    budget = MemoryBudget(process_bytes=3 * GIB, sql_bytes=GIB // 2)
    assert verdict(budget, GIB, 0) is None
    assert verdict(budget, GIB, GIB // 2) is None
    assert verdict(budget, GIB, GIB // 2 + 1) == OVER_BUDGET
    assert verdict(budget, 3 * GIB - MARGIN, 0) == NEAR_BOUND
    assert verdict(budget, 3 * GIB - MARGIN - 1, 0) is None


def test_resident_memory_is_read() -> None:
    assert process_rss_bytes() > 10 << 20


class FakeCursor:
    """A user query's cursor: counts interrupts; its second cursor is a real one (duckdb_memory())."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.interrupts = 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def interrupt(self) -> None:
        self.interrupts += 1


class Fakes:
    def __init__(self) -> None:
        self.now = 100.0
        self.rss = GIB

    def clock(self) -> float:
        return self.now

    def rss_bytes(self) -> int:
        return self.rss


def _watchdog(fakes: Fakes) -> SqlWatchdog:
    return SqlWatchdog(MemoryBudget(process_bytes=3 * GIB, sql_bytes=GIB // 2), fakes.rss_bytes, fakes.clock)


def test_a_query_past_its_deadline_is_interrupted_and_again_until_it_returns() -> None:
    fakes, con = Fakes(), duckdb.connect()
    watchdog = _watchdog(fakes)
    cursor = FakeCursor(con)
    with watchdog.watch(cursor, 5.0) as watch:  # type: ignore[arg-type]
        watchdog.check()
        assert cursor.interrupts == 0 and watch.reason is None
        fakes.now += 5.0
        watchdog.check()
        assert cursor.interrupts == 1 and watch.reason == TIMEOUT
        watchdog.check()
        assert cursor.interrupts == 1  # not at every sample
        fakes.now += REPEAT_SECONDS
        watchdog.check()
        assert cursor.interrupts == 2
    fakes.now += 60.0
    watchdog.check()  # returned: never interrupted on its account again
    assert cursor.interrupts == 2 and watchdog.stopped[TIMEOUT] == 1


def test_near_the_process_bound_every_query_stops_and_none_starts() -> None:
    fakes, con = Fakes(), duckdb.connect()
    watchdog = _watchdog(fakes)
    first, second = FakeCursor(con), FakeCursor(con)
    with watchdog.watch(first, None) as one, watchdog.watch(second, 10.0) as two:  # type: ignore[arg-type]
        fakes.rss = 3 * GIB - MARGIN
        watchdog.check()
        assert (one.reason, two.reason) == (NEAR_BOUND, NEAR_BOUND)
        assert (first.interrupts, second.interrupts) == (1, 1)
    with pytest.raises(MemoryRefused), watchdog.watch(FakeCursor(con), 10.0):  # type: ignore[arg-type]
        pass
    assert watchdog.refused == 1
    fakes.rss = GIB
    with watchdog.watch(FakeCursor(con), 10.0) as three:  # type: ignore[arg-type]
        watchdog.check()
        assert three.reason is None


@pytest.fixture
def con() -> Any:
    con = duckdb.connect(config={"memory_limit": "1GB", "enable_external_access": False})
    yield con
    con.close()


def test_a_memory_hungry_query_is_stopped_at_its_budget_with_a_400(con: duckdb.DuckDBPyConnection) -> None:
    watchdog = SqlWatchdog(MemoryBudget(process_bytes=64 * GIB, sql_bytes=64 << 20))
    cur = con.cursor()
    started = time.monotonic()
    with pytest.raises(SqlMemory, match="64 MiB of working memory together") as stopped:
        run_read_only(cur, HUNGRY, 10, 30.0, watchdog)
    assert time.monotonic() - started < 10  # not the time limit
    assert stopped.value.status == 400 and watchdog.stopped[OVER_BUDGET] == 1
    assert run_read_only(cur, "SELECT 42", 10, 5.0, watchdog)["rows"] == [[42]]  # the cursor goes on


def test_the_time_limit_is_the_watchdogs(con: duckdb.DuckDBPyConnection) -> None:
    watchdog = SqlWatchdog(MemoryBudget(process_bytes=64 * GIB, sql_bytes=64 * GIB))
    cur = con.cursor()
    with pytest.raises(SqlTimeout, match="time limit of 0.3 s"):
        run_read_only(cur, "SELECT count(*) FROM range(10000000000) a WHERE a.range % 7 = 1", 10, 0.3, watchdog)
    assert watchdog.stopped[TIMEOUT] == 1
    assert run_read_only(cur, "SELECT 1", 10, 5.0, watchdog)["rows"] == [[1]]


def test_a_process_near_its_bound_refuses_user_sql_with_a_400(con: duckdb.DuckDBPyConnection) -> None:
    watchdog = SqlWatchdog(MemoryBudget(process_bytes=1, sql_bytes=GIB))
    with pytest.raises(SqlMemory, match="near its memory bound") as refused:
        run_read_only(con.cursor(), "SELECT 1", 10, 5.0, watchdog)
    assert refused.value.status == 400
