"""POST /api/sql answered as an Arrow IPC stream (``Accept: application/vnd.apache.arrow.stream``).

For notebooks (``runstream.query``): record batches stream out as DuckDB produces them, with no
100,000-row cap, so ten million rows reach pandas without JSON in between. What stays as on the JSON
route: the same read-only checks (store/readonly_sql.check_read_only) before anything runs, the same
time limit (``--sql-timeout``), the same 400 JSON for an error found before the first byte.

What differs, and why:

* The time limit counts DuckDB's own work (the timer runs only while a batch is being computed), not the
  time the client takes to read: a notebook on a slow link must not fail a query DuckDB finished long
  ago. DuckDB does nothing while the client is not reading (at most ``DEPTH`` batches wait), and a client
  that takes no data for ``STALL_SECONDS`` loses the stream.
* A byte cap (``--sql-max-bytes``, default 2 GiB) instead of a row cap: the answer ends with an error
  once the next batch would pass it.
* At most ``MAX_STREAMS`` streams run at once (others wait), each on one of the reader's cursors, so the
  page's reads keep cursors of their own.
* An error after the first byte (the time limit, the byte cap, DuckDB failing mid-way) cannot become a
  400 any more. The stream then ends with an empty record batch whose custom metadata holds
  ``runstream.error`` (the message) and ``runstream.status`` ("400"), and the connection is closed
  without the stream's end-of-stream marker and without HTTP's last chunk. ``runstream.query`` raises
  the message; any other client sees a truncated body (curl: "transfer closed with outstanding read data
  remaining", pyarrow over urllib: IncompleteRead), never a short answer that looks complete.
* Batches are 65,536 rows, or 2,048 rows (one DuckDB vector) when a column may be large (BLOB, lists,
  structs, maps: images, histograms, embeddings), which bounds the server's buffer per stream.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from aiohttp import web

from runstream_dashboards.ports import Reader
from runstream_service.errors import RunstreamError, TooLarge
from runstream_service.store.readonly_sql import (
    MAX_TIMEOUT_S,
    ReadOnlySqlError,
    SqlTimeout,
    UnsafeSql,
    check_read_only,
    limited,
)

logger = logging.getLogger("runstream.http")

ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_MAX_BYTES = 2 << 30  # 2 GiB
MAX_STREAMS = 2
DEPTH = 4  # batches computed ahead of the client
STALL_SECONDS = 60.0
REPEAT_SECONDS = 0.25  # a fired time limit interrupts again this often until DuckDB returns
ROWS_PER_BATCH = 65_536
ROWS_PER_LARGE_BATCH = 2_048
LARGE_TYPES = frozenset({"blob", "list", "array", "struct", "map", "union"})
ERROR_KEY = b"runstream.error"
STATUS_KEY = b"runstream.status"

STREAMS_KEY: web.AppKey[asyncio.Semaphore] = web.AppKey("sql_arrow_streams", asyncio.Semaphore)


def setup(app: web.Application) -> None:
    """Gives the app its limit of concurrent Arrow streams (an asyncio.Semaphore binds to the loop that
    first waits on it, so creating it here, before the loop runs, is fine)."""
    app[STREAMS_KEY] = asyncio.Semaphore(MAX_STREAMS)


def wants_arrow(accept: str) -> bool:
    """Whether an Accept header asks for the Arrow stream (it must name it; */* gets JSON)."""
    return any(part.split(";")[0].strip().lower() == ARROW_STREAM for part in accept.split(","))


@dataclass(frozen=True)
class Limits:
    timeout: float  # seconds of DuckDB work, at most readonly_sql.MAX_TIMEOUT_S
    max_bytes: int  # bytes of the stream
    max_rows: int | None = None  # the request's "limit", when given


@dataclass(frozen=True)
class _End:
    error: RunstreamError | None


class _ClientGone(Exception):
    pass


class _Channel:
    """From the DuckDB thread to the event loop: byte chunks, then one _End. At most DEPTH chunks wait."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[bytes | _End] = asyncio.Queue()
        self._slots = threading.Semaphore(DEPTH)
        self.closed = threading.Event()

    def send(self, chunk: bytes) -> None:
        """Blocks the DuckDB thread while DEPTH chunks wait; raises _ClientGone once the client is gone."""
        while not self._slots.acquire(timeout=0.25):
            if self.closed.is_set():
                raise _ClientGone
        if self.closed.is_set():
            raise _ClientGone
        self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)

    def end(self, error: RunstreamError | None) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, _End(error))

    async def receive(self) -> bytes | _End:
        item = await self._queue.get()
        if isinstance(item, bytes):
            self._slots.release()
        return item


class _Collector:
    """The file the IPC writer writes into; `take()` hands over what it wrote since the last call."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> int:
        part = bytes(data)
        self._parts.append(part)
        return len(part)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        chunk = b"".join(self._parts)
        self._parts.clear()
        return chunk


class _WorkClock:
    """The time limit over DuckDB's work only: `call` runs one step with a timer for what is left."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self._cur = cur
        self.seconds = seconds
        self._left = seconds
        self._lock = threading.Lock()
        self._working = False
        self._timer: threading.Timer | None = None
        self.fired = False

    def _interrupt(self) -> None:
        with self._lock:  # never interrupts the cursor outside a step of this answer
            if self._working:
                self.fired = True
                self._cur.interrupt()
                self._arm(REPEAT_SECONDS)  # again until the step returns: the limit holds within a second

    def _arm(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._interrupt)
        self._timer.daemon = True
        self._timer.start()

    def call(self, step: Callable[[], Any]) -> Any:
        """`step()` with the time that is left; DuckDB's errors come out as duckdb.Error (also those the
        Arrow reader wraps as its own), and this clock's interrupt as SqlTimeout."""
        if self._left <= 0:
            self.fired = True
            raise self.timeout()
        started = time.perf_counter()
        with self._lock:
            self._working = True
            self._arm(self._left)
        try:
            return step()
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            if self.fired:
                raise self.timeout() from None
            if isinstance(exc, duckdb.Error):
                raise
            # an error DuckDB raised while the Arrow reader pulled a batch: back to what it was
            interrupted = str(exc).startswith("INTERRUPT")
            raise (duckdb.InterruptException if interrupted else duckdb.Error)(str(exc)) from None
        finally:
            with self._lock:
                self._working = False
                if self._timer is not None:
                    self._timer.cancel()
            self._left -= time.perf_counter() - started

    def timeout(self) -> SqlTimeout:
        return SqlTimeout(
            f"the query ran longer than the time limit of {self.seconds:g} s (DuckDB's work; the time the "
            "client takes to read is not counted) and was stopped; narrow it with WHERE (a run, a tag, a step "
            "range) or add LIMIT"
        )


def batch_rows(type_ids: list[str]) -> int:
    """Rows per record batch: small when a column may hold large values, so a batch stays small."""
    return ROWS_PER_LARGE_BATCH if any(t in LARGE_TYPES for t in type_ids) else ROWS_PER_BATCH


def error_batch(schema: pa.Schema, error: RunstreamError) -> tuple[pa.RecordBatch, dict[bytes, bytes]]:
    """The empty batch that ends a failed stream, and the custom metadata that says why."""
    empty = pa.RecordBatch.from_pylist([], schema=schema)
    return empty, {ERROR_KEY: str(error).encode(), STATUS_KEY: str(error.http_status).encode()}


def _size(count: int) -> str:
    human = f"{count / (1 << 30):.3g} GiB" if count >= 1 << 30 else f"{count / (1 << 20):.3g} MiB"
    return f"{count:,} bytes ({human})"


class _Stream:
    """One answer's IPC writer and how far it got: what an error batch needs to end it."""

    def __init__(self) -> None:
        self.sink = _Collector()
        self.schema: pa.Schema | None = None
        self.writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.started = False  # a chunk went out: errors can no longer be a JSON 400

    def open(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.writer = pa.ipc.new_stream(self.sink, schema)


def produce(cur: duckdb.DuckDBPyConnection, statement: str, limits: Limits, out: _Channel) -> None:
    """Runs on a reader thread: the statement's batches into `out` as IPC bytes, then one _End.

    The DuckDB work runs within readonly_sql.limited (the watchdog of user SQL's memory and the process's
    bound, for the whole stream); the time limit is this module's _WorkClock. The first chunk holds the
    schema and the first batch, so an error DuckDB finds early (a bad cast, the time limit of an aggregate)
    still reaches the client as a JSON 400."""
    clock = _WorkClock(cur, limits.timeout)
    stream = _Stream()
    try:
        with limited(cur, None):  # type: ignore[arg-type]  # None: the time is kept here (see limited)
            _stream(cur, statement, limits, out, clock, stream)
        out.end(None)
    except _ClientGone:
        out.end(None)
    except Exception as exc:
        error = _as_error(exc)
        if stream.started and stream.schema is not None and stream.writer is not None:
            try:
                batch, metadata = error_batch(stream.schema, error)
                stream.writer.write_batch(batch, custom_metadata=metadata)
                out.send(stream.sink.take())
            except _ClientGone:
                pass
        out.end(error)


def _stream(
    cur: duckdb.DuckDBPyConnection, statement: str, limits: Limits, out: _Channel, clock: _WorkClock, stream: _Stream
) -> None:
    relation = clock.call(lambda: cur.sql(statement))
    if relation is None:
        raise UnsafeSql("the statement returned no rows to stream; write a SELECT")
    reader = clock.call(lambda: relation.to_arrow_reader(batch_rows([t.id for t in relation.types])))
    try:
        stream.open(reader.schema)
        assert stream.writer is not None
        sent = rows = 0
        while limits.max_rows is None or rows < limits.max_rows:
            try:
                batch = clock.call(reader.read_next_batch)
            except StopIteration:
                break
            if limits.max_rows is not None and rows + batch.num_rows > limits.max_rows:
                batch = batch.slice(0, limits.max_rows - rows)
            stream.writer.write_batch(batch)
            chunk = stream.sink.take()
            if sent + len(chunk) > limits.max_bytes:
                raise TooLarge(
                    f"the answer passed the byte cap of {_size(limits.max_bytes)} after {rows:,} rows and was "
                    "stopped; narrow it with WHERE or fewer columns, or ask the server's operator to raise "
                    "--sql-max-bytes"
                )
            out.send(chunk)
            stream.started = True
            sent += len(chunk)
            rows += batch.num_rows
        stream.writer.close()
        out.send(stream.sink.take())
    finally:
        reader.close()  # the cursor's pending result: the cursor takes the next query after this


def _as_error(exc: Exception) -> RunstreamError:
    if isinstance(exc, RunstreamError):
        return exc
    logger.exception("an Arrow SQL stream failed")
    return RunstreamError("the server failed while streaming the answer; its log has the details")


async def answer(request: web.Request, reader: Reader, sql: str, limits: Limits) -> web.StreamResponse:
    """The Arrow answer to POST /api/sql; errors before the first byte are raised (JSON 400)."""
    statement = await asyncio.to_thread(check_read_only, sql)  # DuckDB's parser, off the event loop
    limits = Limits(min(limits.timeout, MAX_TIMEOUT_S), limits.max_bytes, limits.max_rows)
    async with request.app[STREAMS_KEY]:
        channel = _Channel(asyncio.get_running_loop())
        work = asyncio.ensure_future(reader.run(lambda cur: produce(cur, statement, limits, channel)))
        try:
            return await _relay(request, channel)
        finally:
            channel.closed.set()
            await work  # the cursor is back in the pool before the next stream starts


async def _relay(request: web.Request, channel: _Channel) -> web.StreamResponse:
    first = await channel.receive()
    if isinstance(first, _End):
        if first.error is not None:
            raise first.error
        raise ReadOnlySqlError("the query gave no answer")  # not reached: a stream has at least its schema
    response = web.StreamResponse(headers={"Content-Type": ARROW_STREAM, "Cache-Control": "no-store"})
    await response.prepare(request)
    item: bytes | _End = first
    while isinstance(item, bytes):
        try:
            await asyncio.wait_for(response.write(item), STALL_SECONDS)
        except (ConnectionError, TimeoutError):
            _cut(request)
            return response
        item = await channel.receive()
    if item.error is not None:
        logger.info("an Arrow SQL stream ended with an error: %s", item.error)
        _cut(request)
    return response


def _cut(request: web.Request) -> None:
    """Close the connection without HTTP's last chunk: the client cannot take the answer as complete."""
    if request.transport is not None:
        request.transport.close()
