"""What changed in the lake, for a lake server's /api/events and runs list (store/lake_queries.py).

A lake server's page shows every server's data, so its event stream must announce what other servers
moved into the lake, not only this server's commits. `LakeWatch`, a thread, looks at the lake's latest
snapshot id once a second; when it grew, it reads which runs the new snapshots inserted points (of any kind)
or run rows for (DuckLake's ``ducklake_table_insertions``, from the new files only), and tells `LakeChanges`, which
merges them with this server's own commits into the one change feed /api/events reads (the page then
refetches those runs, as after a local commit). The same read keeps each run's last step and wall time
(`progress`), so the runs list does not scan the lake for them.

A run's points moved by this server are announced twice (at the local commit, then from the lake): the
page refetches at most once a second anyway. When the watch cannot read the insertions since the
snapshot it saw (expired by maintenance, say), it reads the progress of every run again and announces
every run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Protocol

import duckdb

from runstream_service.store.lake import LAKE, OTHER_KINDS

logger = logging.getLogger("runstream.lake")

WATCH_SECONDS = 1.0


class _Feed(Protocol):
    """What the events stream reads (the dashboard's ports.ChangeFeed): a commit counter, and the runs
    changed since a given count."""

    @property
    def commit_number(self) -> int: ...

    def runs_changed_since(self, commit_number: int) -> list[str]: ...


class LakeChanges:
    """This server's commits (`local`, the writer's counters) and the lake's changes, as one change feed.

    Its own counter: local commits are taken in when the feed is read (on the event loop), lake changes
    when the watch thread reports them; a lock keeps the two apart.
    """

    def __init__(self, local: _Feed) -> None:
        self._local = local
        self._local_seen = local.commit_number
        self._number = 0
        self._runs: dict[str, int] = {}  # run id -> this feed's number at its last change
        self._lock = threading.Lock()

    def _changed(self, run_ids: Iterable[str]) -> None:
        with self._lock:
            self._number += 1
            for run_id in run_ids:
                self._runs[run_id] = self._number

    def lake_changed(self, run_ids: Iterable[str]) -> None:
        self._changed(run_ids)

    def _take_local(self) -> None:
        number = self._local.commit_number
        if number != self._local_seen:
            runs = self._local.runs_changed_since(self._local_seen)
            self._local_seen = number
            self._changed(runs)

    @property
    def commit_number(self) -> int:
        self._take_local()
        return self._number

    def runs_changed_since(self, commit_number: int) -> list[str]:
        self._take_local()
        with self._lock:
            return [run for run, number in self._runs.items() if number > commit_number]


class LakeWatch:
    """A thread: once a second, the lake's new snapshots -> `changes.lake_changed(runs)` and `progress`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, changes: LakeChanges) -> None:
        self._cur = con.cursor()
        self._changes = changes
        self._seen: int | None = None
        self.progress: Mapping[str, tuple[int, float]] = {}  # replaced whole; run id -> (last step, last wall)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runstream-lake-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._cur.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.look()
            except Exception as exc:  # the lake unreachable: looked at again in a second
                logger.warning("reading the lake's changes failed (retried in %.0f s): %s", WATCH_SECONDS, exc)
            self._stop.wait(WATCH_SECONDS)

    def look(self) -> list[str] | None:
        """One look: the runs the lake's new snapshots touched (announced), or None when nothing is new."""
        (latest,) = self._cur.execute(f"SELECT max(snapshot_id) FROM {LAKE}.snapshots()").fetchall()[0]
        if latest == self._seen:
            return None
        rows = None
        if self._seen is not None:
            try:
                rows = self._progress_rows(self._seen + 1, latest)
            except duckdb.Error as exc:  # e.g. the snapshots were expired: read everything again
                logger.info(
                    "reading the lake's insertions since snapshot %s failed (%s): reading it all", self._seen, exc
                )
        if rows is None:
            rows = self._cur.execute(
                f"SELECT run_id, max(step), max(wall_time) FROM {LAKE}.lake_scalars GROUP BY run_id "
                f"UNION ALL SELECT run_id, NULL, NULL FROM {LAKE}.lake_runs"
            ).fetchall()
        progress = dict(self.progress)
        for run_id, step, wall in rows:
            if step is not None and wall is not None:
                old = progress.get(run_id)
                progress[run_id] = (step, wall) if old is None else (max(old[0], step), max(old[1], wall))
        self.progress = progress
        self._seen = latest
        runs = sorted({row[0] for row in rows})
        self._changes.lake_changed(runs)
        return runs

    def _progress_rows(self, first: int, last: int) -> list[tuple[str, int | None, float | None]]:
        def inserted(table: str) -> str:
            return f"ducklake_table_insertions('{LAKE}', 'main', '{table}', {int(first)}, {int(last)})"

        # runs given other kinds' points (histograms, images, ...) or run rows: announced, no progress
        others = "".join(
            f"UNION ALL SELECT DISTINCT run_id, NULL, NULL FROM {inserted(f'lake_{kind.view}')} "
            for kind in OTHER_KINDS
        )
        rows: list[tuple[str, int | None, float | None]] = self._cur.execute(
            f"SELECT run_id, max(step), max(wall_time) FROM {inserted('lake_scalars')} GROUP BY run_id "
            f"UNION ALL SELECT run_id, NULL, NULL FROM {inserted('lake_runs')} {others}"
        ).fetchall()
        return rows
