"""The HTTP side of backup and export: `POST /api/admin/backup` and `GET /api/export`.

Both read on cursors of their own (BulkCursors), never on the dashboard's read pool: a backup or an
export holds its cursor for as long as it streams, and the charts must not wait behind it.

- `POST /api/admin/backup` takes a snapshot (backup.py) into a file under the data directory's
  `backup-tmp/`, then sends that file (Content-Length set, so a cut transfer is seen) and removes it.
  One at a time (409 otherwise). It needs as much free disk as the database takes.
- `GET /api/export?view=V&project=P&run=ID&tag=T` (each filter repeatable) streams the view's rows
  in the selection as an Arrow IPC stream (application/vnd.apache.arrow.stream), record batch by
  record batch, so neither side holds the whole view. An error after the first batch cuts the stream
  without its end-of-stream marker, which the reader reports as a truncated stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import duckdb
import pyarrow as pa
from aiohttp import web

from runstream_dashboards import auth
from runstream_service import backup, export
from runstream_service.auth import ADMIN_ANY, bearer
from runstream_service.errors import PermissionDenied, RunstreamError

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ADMIN_SCOPE = ADMIN_ANY  # a backup holds every project's runs
SEND_CHUNK = 1 << 20


class Busy(RunstreamError):
    """Another backup is being taken."""

    http_status = 409


class BulkCursors:
    """A few cursors of the server's connection for long reads (backups, exports), lent one at a time."""

    def __init__(self, con: duckdb.DuckDBPyConnection, count: int = 2) -> None:
        # Made here, on the thread that owns `con` (as store/reader.py makes its cursors).
        self._all = [con.cursor() for _ in range(count)]
        self._free: asyncio.Queue[duckdb.DuckDBPyConnection] | None = None

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[duckdb.DuckDBPyConnection]:
        if self._free is None:  # made on the event loop that uses it
            self._free = asyncio.Queue()
            for cursor in self._all:
                self._free.put_nowait(cursor)
        cursor = await self._free.get()
        try:
            yield cursor
        finally:
            self._free.put_nowait(cursor)

    def close(self) -> None:
        """At shutdown: a backup or export still reading is interrupted (its partial file removed)."""
        for cursor in self._all:
            cursor.interrupt()
            cursor.close()


def require_admin(request: web.Request) -> None:
    """With --tokens, the backup route needs a token with ADMIN_SCOPE (the app's middleware has already
    checked that the token is known and may read); `read` alone is not enough."""
    tokens = request.app[auth.TOKENS_KEY]
    if tokens is None:
        return
    presented = bearer(request.headers.get("Authorization"))
    if presented is not None:
        token = tokens.lookup(presented)
    else:
        token = request.app[auth.SESSIONS_KEY].get(request.cookies.get(auth.COOKIE))
    if token is None or ADMIN_SCOPE not in token.scopes:
        raise PermissionDenied(f"a backup needs a token with the scope {ADMIN_SCOPE!r}")


class BulkRoutes:
    """The two routes over the server's cursors; `may_back_up` is the token check of the backup route."""

    def __init__(self, cursors: BulkCursors, data_dir: Path, may_back_up: Callable[[web.Request], None]) -> None:
        self._cursors = cursors
        self._spool = data_dir / "backup-tmp"
        shutil.rmtree(self._spool, ignore_errors=True)  # what a killed server left behind
        self._may_back_up = may_back_up
        self._backing_up = asyncio.Lock()

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/admin/backup", self.backup)
        app.router.add_get("/api/export", self.export)

    async def backup(self, request: web.Request) -> web.StreamResponse:
        self._may_back_up(request)
        if self._backing_up.locked():
            raise Busy("a backup is being taken; try again when it is done")
        async with self._backing_up, self._cursors.lend() as cursor:
            self._spool.mkdir(parents=True, exist_ok=True)
            path = self._spool / f"backup-{uuid.uuid4().hex}.duckdb"
            try:
                result = await asyncio.to_thread(backup.snapshot_to, cursor, path)
                response = web.StreamResponse(
                    headers={
                        "Content-Type": "application/vnd.duckdb",
                        "Content-Length": str(result.bytes),
                        "Content-Disposition": 'attachment; filename="runstream-backup.duckdb"',
                        "X-Runstream-Snapshot-At": repr(result.snapshot_at),
                        "X-Runstream-Rows": str(result.rows),
                        "X-Runstream-Snapshot-Seconds": f"{result.seconds:.3f}",
                    }
                )
                await response.prepare(request)
                with open(path, "rb") as handle:
                    while chunk := await asyncio.to_thread(handle.read, SEND_CHUNK):
                        await response.write(chunk)
                await response.write_eof()
                return response
            finally:
                path.unlink(missing_ok=True)

    async def export(self, request: web.Request) -> web.StreamResponse:
        view = export.view_named(request.query.get("view", ""))
        selection = export.Selection(
            projects=tuple(request.query.getall("project", [])),
            runs=tuple(request.query.getall("run", [])),
            tags=tuple(request.query.getall("tag", [])),
        )
        query = export.view_sql(view, selection)
        if not export.selected(view, selection):
            query += " LIMIT 0"
        async with self._cursors.lend() as cursor:
            reader = await asyncio.to_thread(lambda: cursor.sql(query).to_arrow_reader(export.BATCH_ROWS))
            response = web.StreamResponse(headers={"Content-Type": ARROW_STREAM})
            await response.prepare(request)
            sink = _Chunks()
            writer = pa.ipc.new_stream(sink, reader.schema)
            await response.write(sink.take())
            while (batch := await asyncio.to_thread(_next_batch, reader)) is not None:
                writer.write_batch(batch)
                await response.write(sink.take())
            writer.close()
            await response.write(sink.take())
            await response.write_eof()
            return response


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


class _Chunks:
    """A write-only file for pyarrow's IPC writer: what it wrote, taken out chunk by chunk."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data
