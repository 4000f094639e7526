"""The Arrow answer of POST /api/sql, its parts without a server: which requests get it, batch sizes,
the batch that carries an error, and the producer over a DuckDB cursor (byte cap, row limit, errors)."""

from __future__ import annotations

import asyncio
import io

import duckdb
import pyarrow as pa
import pyarrow.ipc
import pytest

from runstream_dashboards import sql_arrow
from runstream_dashboards.sql_arrow import Limits, batch_rows, error_batch, wants_arrow
from runstream_service.errors import TooLarge


@pytest.mark.parametrize(
    ("accept", "arrow"),
    [
        ("application/vnd.apache.arrow.stream", True),
        ("application/json, application/vnd.apache.arrow.stream;q=0.9", True),
        ("Application/Vnd.Apache.Arrow.Stream", True),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("application/vnd.apache.arrow.file", False),
    ],
)
def test_only_a_request_that_names_the_stream_gets_it(accept: str, arrow: bool) -> None:
    assert wants_arrow(accept) is arrow


def test_batches_are_small_when_a_column_may_be_large() -> None:
    assert batch_rows(["varchar", "bigint", "integer", "double"]) == sql_arrow.ROWS_PER_BATCH
    for large in ("blob", "list", "array", "struct", "map"):
        assert batch_rows(["varchar", large]) == sql_arrow.ROWS_PER_LARGE_BATCH


def test_the_error_batch_is_empty_and_says_why() -> None:
    schema = pa.schema([("x", pa.int64())])
    batch, metadata = error_batch(schema, TooLarge("too big"))
    assert batch.num_rows == 0 and batch.schema == schema
    assert metadata == {b"runstream.error": b"too big", b"runstream.status": b"400"}


class Collect:
    """Stands in for the channel to the event loop: keeps what the producer sends."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.error: Exception | None = None
        self.ended = False

    def send(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def end(self, error: Exception | None) -> None:
        self.error, self.ended = error, True

    def table(self) -> pa.Table:
        return pa.ipc.open_stream(io.BytesIO(b"".join(self.chunks))).read_all()


def produce(sql: str, limits: Limits) -> Collect:
    out = Collect()
    cursor = duckdb.connect(":memory:", config={"enable_external_access": False}).cursor()
    sql_arrow.produce(cursor, sql, limits, out)  # type: ignore[arg-type]
    assert out.ended
    cursor.execute("SELECT 1")  # the cursor takes the next query
    return out


def test_the_producer_streams_every_row_and_ends_the_stream() -> None:
    out = produce("SELECT range AS i FROM range(200000)", Limits(timeout=10, max_bytes=1 << 30))
    assert out.error is None and out.table().num_rows == 200_000
    assert len(out.chunks) > 2  # the schema and first batch, more batches, the end-of-stream marker


def test_the_row_limit_stops_the_stream_early() -> None:
    out = produce("SELECT * FROM range(200000)", Limits(timeout=10, max_bytes=1 << 30, max_rows=70_000))
    assert out.error is None and out.table().num_rows == 70_000


def test_the_byte_cap_ends_the_stream_with_the_error_batch() -> None:
    out = produce("SELECT * FROM range(1000000)", Limits(timeout=10, max_bytes=1_000_000))
    assert isinstance(out.error, TooLarge)
    reader = pa.ipc.open_stream(io.BytesIO(b"".join(out.chunks)))
    batches = []
    while True:
        batch, metadata = reader.read_next_batch_with_custom_metadata()
        if metadata is not None:
            break
        batches.append(batch)
    assert sum(b.num_rows for b in batches) == 65_536 and b"byte cap" in metadata[b"runstream.error"]


def test_an_error_before_the_first_batch_sends_nothing() -> None:
    out = produce("SELECT error('early') FROM range(3)", Limits(timeout=10, max_bytes=1 << 30))
    assert out.chunks == [] and out.error is not None and "early" in str(out.error)


def test_the_time_limit_stops_duckdbs_work() -> None:
    out = produce("SELECT sum(a.range * b.range) FROM range(100000000) a, range(100) b", Limits(0.3, 1 << 30))
    assert out.chunks == [] and "time limit of 0.3 s" in str(out.error)


def test_a_channel_tells_the_producer_when_the_client_is_gone() -> None:
    async def scenario() -> None:
        channel = sql_arrow._Channel(asyncio.get_running_loop())
        for _ in range(sql_arrow.DEPTH):
            channel.send(b"x")
        channel.closed.set()
        with pytest.raises(sql_arrow._ClientGone):
            await asyncio.to_thread(channel.send, b"y")  # would wait for a slot forever

    asyncio.run(scenario())
