"""Crashed runs across lake servers: a run's writer may be on any server, so no single server's streams
say whether it is alive (crashes.py decides that for one server's own file).

Each server publishes, every move cycle, the runs it sees alive (an open Write stream, or a write within
the cycle) into a small PostgreSQL table in the catalog's database, ``runstream_lake_live(server, run_id,
seen_at)``: one row per server and run, the time it last saw the run alive. One server at a time (a third
advisory lock, not waited for) then compares the lake's runs with it:

* a ``running`` run that no server has seen alive for ``crash_after`` seconds (counted from its open or
  last finish note if no server ever saw it) becomes ``crashed`` in the lake;
* a ``crashed`` run that some server saw alive after it was marked is ``running`` again.

Both are changes of ``lake_runs`` with a newer ``noted_at`` (store/lake.py), so a later open or finish of
the run, on any server, still wins over them. A server marks nothing until it has been up for
``crash_after`` seconds itself, so that after an outage of every server, writers have that long to come
back. Clocks are wall clocks: the servers' must agree to well under ``crash_after``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import duckdb

from runstream_service.store.lake import LAKE

CRASH_LOCK = 0x72756E03  # the third advisory lock key (store/lake.py has the mover's and the maintainer's)
LIVE_TABLE = """
CREATE TABLE IF NOT EXISTS runstream_lake_live (
    server TEXT NOT NULL, run_id TEXT NOT NULL, seen_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (server, run_id)
)
"""


class LakeCrashes:
    """One server's side: publish what it sees alive, and (holding CRASH_LOCK) mark the lake's runs."""

    def __init__(self, server: str, crash_after: float, alive: Callable[[], Iterable[str]]) -> None:
        self.server = server
        self.crash_after = crash_after
        self._alive = alive  # the runs this server sees alive now (CrashWatch.alive_runs)
        self._started = time.time()
        self._created = False

    def publish(self, pg: Any) -> None:
        """Upsert this server's live runs with the time now (a psycopg2 cursor, autocommit)."""
        if not self._created:
            pg.execute(LIVE_TABLE)
            self._created = True
        now = time.time()
        rows = [(self.server, run, now) for run in sorted(set(self._alive()))]
        if rows:
            pg.executemany(
                "INSERT INTO runstream_lake_live VALUES (%s, %s, %s) "
                "ON CONFLICT (server, run_id) DO UPDATE SET seen_at = EXCLUDED.seen_at",
                rows,
            )

    def due(self, now: float) -> bool:
        return now - self._started >= self.crash_after

    def mark(self, pg: Any, cur: duckdb.DuckDBPyConnection, now: float) -> tuple[list[str], list[str]]:
        """Mark crashed and revived runs in the lake, in one lake transaction; returns (crashed, revived).
        The caller holds CRASH_LOCK and the mover's lock (no move commits meanwhile)."""
        pg.execute("SELECT run_id, max(seen_at) FROM runstream_lake_live GROUP BY run_id")
        seen = {run: float(at) for run, at in pg.fetchall()}
        runs = cur.execute(f"SELECT run_id, status, coalesce(noted_at, created_at, 0) FROM {LAKE}.lake_runs").fetchall()
        crashed, revived = decide(runs, seen, now, self.crash_after)
        if crashed or revived:
            cur.execute("BEGIN")
            try:
                for ids, old, new in ((crashed, "running", "crashed"), (revived, "crashed", "running")):
                    if ids:
                        cur.execute(
                            f"UPDATE {LAKE}.lake_runs SET status = ?, noted_at = ? "
                            "WHERE status = ? AND list_contains(?, run_id)",
                            [new, now, old, ids],
                        )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        # rows of runs long gone: kept a day after their last sighting, for the marks above
        pg.execute("DELETE FROM runstream_lake_live WHERE seen_at < %s", (now - 86400.0,))
        return crashed, revived


def decide(
    runs: Iterable[tuple[str, str, float]], seen: dict[str, float], now: float, crash_after: float
) -> tuple[list[str], list[str]]:
    """(runs to mark crashed, runs to mark running again) from the lake's (run_id, status, noted_at) and
    each run's latest sighting on any server. Pure."""
    crashed, revived = [], []
    for run, status, noted_at in runs:
        last = max(seen.get(run, 0.0), noted_at)
        if status == "running" and now - last >= crash_after:
            crashed.append(run)
        elif status == "crashed" and seen.get(run, 0.0) > noted_at:
            revived.append(run)
    return sorted(crashed), sorted(revived)
