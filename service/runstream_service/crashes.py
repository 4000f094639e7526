"""Crashed runs: a run that is `running`, has no open Write stream and had no write for `--crash-after`
seconds becomes `crashed`; a writer coming back (OpenRun, or a batch) makes it `running` again.

Only the server knows which streams are open, so this lives in the server's memory: the gRPC service
(ingest.py) reports OpenRun calls, the streams it holds and the runs their batches belong to. An open
but idle stream counts as alive (a job may log rarely). The clock starts when this server starts, not
at a run's last point in the file, so a server that was down for an hour does not find every run
crashed when it comes back: their writers get `--crash-after` seconds to reconnect.

The decision (`due`) is pure; `CrashWatch` keeps the state on the event loop and turns decisions into
writes through the single writer (store/lifecycle.py's mark_crashed and mark_running).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from runstream_service.store import lifecycle
from runstream_service.store.base import Reads, Transaction

logger = logging.getLogger("runstream.crashes")

DEFAULT_CRASH_AFTER = 300.0


def due(
    running: Iterable[str],
    open_streams: Mapping[str, int],
    last_seen: Mapping[str, float],
    started: float,
    now: float,
    crash_after: float,
) -> list[str]:
    """The running runs to mark crashed: no open stream, and nothing from them for `crash_after` seconds
    since the later of their last write and the server's start."""
    return [
        run
        for run in running
        if not open_streams.get(run) and now - max(started, last_seen.get(run, started)) >= crash_after
    ]


class Stream:
    """One Write stream's runs: alive while the stream is open."""

    def __init__(self, watch: CrashWatch) -> None:
        self._watch = watch
        self._runs: set[str] = set()

    def saw(self, run_id: str) -> None:
        """A batch of `run_id` arrived on this stream."""
        if run_id not in self._runs:
            self._runs.add(run_id)
            self._watch.open_streams[run_id] += 1
        self._watch.saw(run_id)

    def close(self) -> None:
        for run in self._runs:
            self._watch.open_streams[run] -= 1
            self._watch.last_seen[run] = self._watch.clock()
        self._runs.clear()


class CrashWatch:
    """The runs' liveness, on the event loop; `run()` marks crashed runs every few seconds."""

    def __init__(
        self,
        crash_after: float,
        submit: Callable[[Transaction], Awaitable[Any]],
        reads: Reads,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crash_after = crash_after
        self.clock = clock
        self._submit = submit
        self._reads = reads
        self.started = clock()
        self.open_streams: Counter[str] = Counter()
        self.last_seen: dict[str, float] = {}
        self.crashed: set[str] = set()
        self._reviving: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """The runs already crashed in the file (a writer coming back revives them)."""
        self.crashed = set(await self._reads.run(lifecycle.crashed_run_ids))

    def stream(self) -> Stream:
        return Stream(self)

    def saw(self, run_id: str) -> None:
        """A writer of `run_id` is there (OpenRun or a batch)."""
        self.last_seen[run_id] = self.clock()
        if run_id in self.crashed:
            self.crashed.discard(run_id)
            task = asyncio.ensure_future(self._revive([run_id]))
            self._reviving.add(task)
            task.add_done_callback(self._reviving.discard)

    def alive_runs(self, within: float = 10.0) -> list[str]:
        """Runs with an open stream, or written within `within` seconds (for store/lake_crashes.py; safe
        to call from another thread: each dict is copied whole under the GIL)."""
        now = self.clock()
        streams = list(self.open_streams.items())
        seen = list(self.last_seen.items())
        return [run for run, n in streams if n > 0] + [run for run, at in seen if now - at < within]

    def forget(self, run_id: str) -> None:
        """The run was deleted."""
        self.last_seen.pop(run_id, None)
        self.crashed.discard(run_id)

    async def _revive(self, run_ids: list[str]) -> None:
        try:
            revived = await self._submit(Transaction(lambda con: lifecycle.mark_running(con, run_ids)))
        except Exception:  # the next batch tries again
            logger.exception("marking runs %s running again failed", run_ids)
            self.crashed.update(run_ids)
            return
        if revived:
            logger.info("runstream: run(s) %s are running again (a writer came back)", ", ".join(revived))

    async def check(self) -> list[str]:
        """Mark the runs that are due crashed; returns them."""
        running = await self._reads.run(lifecycle.running_run_ids)
        now = self.clock()
        candidates = due(running, self.open_streams, self.last_seen, self.started, now, self.crash_after)
        if not candidates:
            return []
        marked: list[str] = await self._submit(Transaction(lambda con: lifecycle.mark_crashed(con, candidates)))
        # A writer may have come back while the transaction was queued: it revives its run at once.
        back = [run for run in marked if self.last_seen.get(run, self.started) > now or self.open_streams.get(run)]
        self.crashed.update(run for run in marked if run not in back)
        if back:
            await self._revive(back)
        crashed = [run for run in marked if run not in back]
        if crashed:
            logger.warning(
                "runstream: run(s) %s crashed: no open stream and no write for %g s (--crash-after)",
                ", ".join(crashed),
                self.crash_after,
            )
        return crashed

    async def run(self, stopping: asyncio.Event) -> None:
        interval = max(0.2, min(self.crash_after / 4, 15.0))
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), interval)
            except TimeoutError:
                pass
            if stopping.is_set():
                return
            try:
                await self.check()
            except Exception:  # keep watching; the next check tries again
                logger.exception("checking for crashed runs failed")
