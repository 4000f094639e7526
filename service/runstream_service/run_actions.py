"""The server's run actions (delete, rename, tags, note, archive) as jobs of the single writer.

The HTTP API (dashboards/runstream_dashboards/runs_api.py) calls these; each is one transaction on the
writer thread (store/lifecycle.py's SQL), so it never races a batch: a delete commits, the store forgets
the run, and the run's later batches are refused as those of a deleted run.

The compactor writes on its own cursor: a delete that meets its transaction over the same scalar rows
conflicts (DuckDB's optimistic concurrency), and one side rolls back. The compactor retries by itself;
a delete is retried here, a few times, before the caller is told to try again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import duckdb

from runstream_service.crashes import CrashWatch
from runstream_service.errors import NotFound, RunstreamError
from runstream_service.store import lifecycle
from runstream_service.store.base import RunDeleted, RunsSnapshot, Transaction

logger = logging.getLogger("runstream.runs")

DELETE_ATTEMPTS = 5


class Busy(RunstreamError):
    """The store kept conflicting with the compactor; the caller may try again."""

    http_status = 503


class RunActions:
    def __init__(
        self,
        submit: Callable[[Transaction], Awaitable[Any]],
        runs: Callable[[], RunsSnapshot],
        crashes: CrashWatch | None = None,
    ) -> None:
        self._submit = submit
        self._runs = runs
        self._crashes = crashes

    def project_of(self, run_id: str) -> str:
        """The run's project (for the caller's scope check); NotFound or RunDeleted otherwise."""
        runs = self._runs()
        project = runs.project_of(run_id)
        if project is not None:
            return project
        if run_id in runs.deleted:
            raise RunDeleted(lifecycle.deleted_message(run_id))
        raise NotFound(f"no run {run_id!r}; GET /api/runs lists them")

    async def delete(self, run_id: str, deleted_by: str) -> dict[str, Any]:
        self.project_of(run_id)
        job = Transaction(lambda con: lifecycle.delete_run(con, run_id, deleted_by), forget_runs=(run_id,))
        for attempt in range(DELETE_ATTEMPTS):
            try:
                deleted: lifecycle.Deleted = await self._submit(job)
                break
            except duckdb.TransactionException as exc:  # a conflict with the compactor: it rolled us back
                logger.info("deleting run %s conflicted with the compactor (%s); trying again", run_id, exc)
                await asyncio.sleep(0.2 * (attempt + 1))
        else:
            raise Busy(f"run {run_id!r} could not be deleted while the compactor rewrote it; try again")
        if self._crashes is not None:
            self._crashes.forget(run_id)
        await self._checkpoint()
        logger.warning(
            "runstream: run %s (%r, project %r) deleted by %s: %d points",
            run_id,
            deleted.name,
            deleted.project,
            deleted_by,
            deleted.points,
        )
        return deleted.as_json()

    async def _checkpoint(self) -> None:
        """Blocks a delete freed are reused only after a checkpoint: run one now rather than when the WAL fills."""

        def checkpoint(con: duckdb.DuckDBPyConnection) -> bool:
            con.execute("CHECKPOINT")
            return True

        try:
            await self._submit(Transaction(lambda con: None, single=checkpoint))
        except duckdb.Error as exc:  # another transaction (the compactor's) is open: a later checkpoint does it
            logger.info("no checkpoint after the delete (%s); the next automatic one frees its blocks", exc)

    async def rename(self, run_id: str, name: str) -> None:
        self.project_of(run_id)
        lifecycle.check_name(name)
        await self._submit(Transaction(lambda con: lifecycle.rename_run(con, run_id, name), labels_of=(run_id,)))

    async def label(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """`changes`: any of tags, add_tags, remove_tags, note, archived (store/lifecycle.set_labels)."""
        self.project_of(run_id)
        labels: lifecycle.Labels = await self._submit(
            Transaction(lambda con: lifecycle.set_labels(con, run_id, **changes), labels_of=(run_id,))
        )
        return {"tags": labels.tags, "note": labels.note, "archived": labels.archived}
