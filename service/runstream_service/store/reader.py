"""Reads: each on its own DuckDB cursor, in a worker thread, so the event loop never waits on DuckDB.

Cursors see committed data only; the writer thread never waits for them either.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import duckdb

T = TypeVar("T")


class StoreReader:
    def __init__(self, con: duckdb.DuckDBPyConnection, threads: int = 4) -> None:
        # Cursors are made here, on the thread that owns `con`, and handed out one per read.
        self._cursors: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        self._all = [con.cursor() for _ in range(threads)]
        for cursor in self._all:
            self._cursors.put(cursor)
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="runstream-read")

    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `read(cursor)` in a worker thread and return its result."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._with_cursor, read)

    def _with_cursor(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        cursor = self._cursors.get()
        try:
            return read(cursor)
        finally:
            self._cursors.put(cursor)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        for cursor in self._all:
            cursor.close()
