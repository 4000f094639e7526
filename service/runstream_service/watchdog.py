"""The watchdog of user SQL (POST /api/sql): its time limit, its own memory budget, the process's bound.

DuckDB has one memory limit per database, shared by everything that runs in it: a user's query
that builds a huge list (``SELECT list(range) FROM range(400000000)``) takes DuckDB's memory that
ingest and the compactor then cannot get, and DuckDB cannot give one connection a smaller limit.
So a thread watches the user queries while any runs, every SAMPLE_SECONDS:

* their memory: DuckDB's working memory (``duckdb_memory()`` without the cached table blocks, which
  DuckDB evicts when others need room) above its level when the first of them started. Together
  they may add MemoryBudget.sql_bytes (a quarter of DuckDB's memory limit); past that, every running
  user query is interrupted, and each answers a 400 that says so;
* the whole process: its resident memory may reach MemoryBudget.process_bytes (DuckDB's memory
  limit plus PROCESS_OVERHEAD for Python, gRPC, the writer's queue and the compactor's chunks;
  bench/soak.py measured 773 MiB beyond a 2GB limit over 300M points, and 1,270 MiB for a few
  seconds before a compaction's steps were counted again as points arrived); within MARGIN of
  that, every running user query is interrupted and new ones are refused until the process is
  back below. Ingest itself is not stopped: its share is bounded by design (the writer's queue,
  the compactor's steps) and measured;
* their time: a query past its deadline is interrupted, and again every REPEAT_SECONDS until it
  returns, so the limit holds within a second.

The trade-off, against user SQL in a separate process over a snapshot: a snapshot of a database
that a server holds open means copying the file (gigabytes) or a pause of the writer per snapshot,
and its answers lag behind ingest; in process, user SQL reads live data at no copy, but its memory
is measured, not reserved: a query may overshoot its budget by what it allocates in one sample
(tens of MB), and ingest's own working memory during those moments counts against user SQL (a query
can then be stopped early; the message says so). Memory held outside DuckDB (Python objects of a
fetched result) is seen only by the process bound.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

SAMPLE_SECONDS = 0.025
REPEAT_SECONDS = 0.25  # an interrupt is sent again this often until the query returns
PROCESS_OVERHEAD = 5 << 28  # 1.25 GiB beyond DuckDB's memory limit: Python, gRPC, queues, the compactor's chunks
MARGIN = 256 << 20  # user SQL is stopped this far below the process bound
SQL_SHARE = 4  # user SQL's working memory: DuckDB's memory limit / SQL_SHARE

WORKING_MEMORY_SQL = "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag <> 'BASE_TABLE'"
_UNITS = {"bytes": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_UNITS.update({"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "b": 1})


@dataclass(frozen=True)
class MemoryBudget:
    process_bytes: int  # the whole server's resident memory stays below this
    sql_bytes: int  # DuckDB working memory that user SQL may add, all its queries together

    @classmethod
    def for_memory_limit(cls, limit_bytes: int) -> MemoryBudget:
        return cls(process_bytes=limit_bytes + PROCESS_OVERHEAD, sql_bytes=max(limit_bytes // SQL_SHARE, 16 << 20))


def parse_size(text: str) -> int:
    """Bytes of a size as DuckDB prints or takes it: '1.8 GiB', '2GB', '512 MiB', '0 bytes'."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def process_rss_bytes() -> int:
    """This process's resident memory, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


TIMEOUT = "timeout"
OVER_BUDGET = "budget"
NEAR_BOUND = "bound"


def verdict(budget: MemoryBudget, rss: int, sql_working: int) -> str | None:
    """Why every running user query must stop now (NEAR_BOUND, OVER_BUDGET), or None. Pure."""
    if rss >= budget.process_bytes - MARGIN:
        return NEAR_BOUND
    if sql_working > budget.sql_bytes:
        return OVER_BUDGET
    return None


class MemoryRefused(Exception):
    """A user query was not started: the process is near its memory bound."""


@dataclass
class Watch:
    """One running user query, as the watchdog sees it; `reason` says why it was interrupted."""

    cursor: duckdb.DuckDBPyConnection
    monitor: duckdb.DuckDBPyConnection  # a second cursor of the same database, for duckdb_memory()
    deadline: float
    reason: str | None = None
    interrupted_at: float | None = field(default=None)


class SqlWatchdog:
    """Interrupts user queries that run too long or use too much memory (see the module's docstring)."""

    def __init__(
        self,
        budget: MemoryBudget,
        rss_bytes: Callable[[], int] = process_rss_bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self._rss_bytes = rss_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._watches: list[Watch] = []
        self._baseline: int | None = None  # DuckDB working memory before the running user queries
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.stopped = {TIMEOUT: 0, OVER_BUDGET: 0, NEAR_BOUND: 0}  # queries interrupted, by reason
        self.refused = 0

    @contextmanager
    def watch(self, cursor: duckdb.DuckDBPyConnection, timeout: float | None) -> Iterator[Watch]:
        """Watch the query about to run on `cursor` for as long as the block runs; `timeout` None: its
        memory only (a caller that keeps its own time, such as a stream paused while its client reads).

        Raises MemoryRefused (nothing runs) while the process is near its bound."""
        if self._rss_bytes() >= self.budget.process_bytes - MARGIN:
            self.refused += 1
            raise MemoryRefused
        deadline = math.inf if timeout is None else self._clock() + timeout
        watch = Watch(cursor, cursor.cursor(), deadline)
        with self._lock:
            if not self._watches:
                self._baseline = None
            self._watches.append(watch)
            self._start()
        self._wake.set()
        try:
            yield watch
        finally:
            with self._lock:  # after this, the cursor is never interrupted on this query's account
                self._watches.remove(watch)
                watch.monitor.close()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="runstream-sql-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                idle = not self._watches
            if idle:
                self._wake.wait()
                self._wake.clear()
                continue
            self.check()
            time.sleep(SAMPLE_SECONDS)

    def check(self) -> None:
        """One sample: measure, then interrupt whatever must stop (the thread's step; tests call it)."""
        with self._lock:
            if not self._watches:
                return
            try:
                ((working,),) = self._watches[0].monitor.execute(WORKING_MEMORY_SQL).fetchall()
            except duckdb.Error:
                working = self._baseline or 0
            self._baseline = min(int(working), self._baseline if self._baseline is not None else int(working))
            reason = verdict(self.budget, self._rss_bytes(), int(working) - self._baseline)
            now = self._clock()
            for watch in self._watches:
                if watch.reason is None and (reason or now >= watch.deadline):
                    watch.reason = reason or TIMEOUT
                    self.stopped[watch.reason] += 1
                if watch.reason and (watch.interrupted_at is None or now - watch.interrupted_at >= REPEAT_SECONDS):
                    watch.interrupted_at = now
                    watch.cursor.interrupt()


_process_lock = threading.Lock()
_process_watchdog: SqlWatchdog | None = None


def process_watchdog(cursor: duckdb.DuckDBPyConnection) -> SqlWatchdog:
    """The process's one watchdog (resident memory is the process's), sized on first use by the memory
    limit of `cursor`'s database (the server's --memory-limit, or DuckDB's default)."""
    global _process_watchdog
    with _process_lock:
        if _process_watchdog is None:
            ((limit,),) = cursor.execute("SELECT current_setting('memory_limit')").fetchall()
            _process_watchdog = SqlWatchdog(MemoryBudget.for_memory_limit(parse_size(str(limit))))
        return _process_watchdog
