"""crashes.py: which running runs are crashed (pure), and CrashWatch over fakes of the writer and reader."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb

from runstream_service.crashes import CrashWatch, due
from runstream_service.store import lifecycle
from runstream_service.store.base import Transaction
from runstream_service.store.schema import create_schema

T = TypeVar("T")


def test_due_counts_from_the_later_of_the_last_write_and_the_start() -> None:
    running = ["quiet", "recent", "streaming", "never-seen"]
    last_seen = {"quiet": 100.0, "recent": 190.0, "streaming": 0.0}
    assert due(running, {"streaming": 1}, last_seen, started=50.0, now=200.0, crash_after=60) == [
        "quiet",
        "never-seen",
    ]
    # a server started 30 s ago: nobody is crashed yet, however old their last write
    assert due(running, {}, {"quiet": 0.0}, started=170.0, now=200.0, crash_after=60) == []


class FakeStore:
    """The writer and the reader over one in-memory database (a fake of the server's seams)."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        create_schema(self.con)

    async def submit(self, job: Transaction) -> Any:
        return job.work(self.con)

    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        return read(self.con)

    def status(self, run_id: str) -> str:
        return str(self.con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0])


def test_crash_watch_marks_and_revives() -> None:
    store = FakeStore()
    for run in ("a", "b"):
        store.con.execute(f"INSERT INTO run_meta VALUES ('{run}', 'p', '{run}', '{{}}', 'running', 0, NULL, 'h', 1)")
    now = [1000.0]
    watch = CrashWatch(10, store.submit, store, clock=lambda: now[0])

    async def scenario() -> None:
        await watch.load()
        stream = watch.stream()
        stream.saw("b")  # b has an open stream
        now[0] += 11
        assert await watch.check() == ["a"]
        assert store.status("a") == "crashed" and store.status("b") == "running"
        watch.saw("a")  # a's writer is back
        await asyncio.sleep(0)
        await asyncio.gather(*watch._reviving)
        assert store.status("a") == "running"
        stream.close()  # b's stream ends: its clock starts then
        now[0] += 9
        assert await watch.check() == []
        now[0] += 2
        assert sorted(await watch.check()) == ["a", "b"]
        assert set(lifecycle.crashed_run_ids(store.con)) == {"a", "b"}

    asyncio.run(scenario())
