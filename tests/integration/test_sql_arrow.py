"""POST /api/sql answered as an Arrow IPC stream, on a real `runstream serve` (README "HTTP API").

The same rows and types as the JSON answer, without its 100,000-row cap; the same refusals as a JSON 400
before anything streams; an error after the stream started ends it so that no client can take the
answer as complete; the byte cap and the time limit (over DuckDB's work, not the client's reading) hold;
and the server's cursors survive clients that go away mid-stream.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pytest

import runstream
from support import ServerProcess

ARROW = "application/vnd.apache.arrow.stream"
TIMEOUT = 30.0
# An error DuckDB raises only when it reaches row 4,000,000: long after the first batch went out.
FAILS_LATE = (
    "SELECT CASE WHEN range = 4000000 THEN error('boom at four million') ELSE range END AS x FROM range(5000000)"
)


def post(url: str, body: dict[str, Any], accept: str = ARROW) -> Any:
    request = urllib.request.Request(
        url + "/api/sql",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": accept},
        method="POST",
    )
    return urllib.request.urlopen(request, timeout=TIMEOUT)


def refusal(url: str, body: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    with pytest.raises(urllib.error.HTTPError) as raised:
        post(url, body)
    return raised.value.code, raised.value.headers.get("Content-Type", ""), json.load(raised.value)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A server with one run of 3 tags x 2,000 steps (NaN and infinities included)."""
    process = ServerProcess(tmp_path_factory.mktemp("arrow") / "data").start()
    run = runstream.init(project="arrow", name="r", server=process.address, config={"lr": 0.1})
    for step in range(2000):
        run.log(
            {"loss": 1.0 / (step + 1), "acc": step / 2000, "odd": [float("nan"), float("inf")][step % 2]}, step=step
        )
    assert run.finish(timeout=TIMEOUT).complete
    yield process, run.id
    process.stop()


def test_the_arrow_answer_holds_the_json_answers_rows_and_types(served: tuple[ServerProcess, str]) -> None:
    server, run_id = served
    sql = f"SELECT * FROM scalars WHERE run_id = '{run_id}' ORDER BY tag, step"
    with post(server.http_url, {"sql": sql}) as reply:
        assert reply.headers["Content-Type"] == ARROW
        table = pa.ipc.open_stream(reply).read_all()
    with post(server.http_url, {"sql": sql, "limit": 100_000}, accept="application/json") as reply:
        answer = json.load(reply)
    assert table.column_names == answer["columns"]
    assert table.num_rows == len(answer["rows"]) == 6000
    assert str(table.schema.field("step").type) == "int64" and str(table.schema.field("value").type) == "double"
    rows = [list(row.values()) for row in table.to_pylist()]
    for got, want in zip(rows, answer["rows"]):
        value = got[5]
        expected = {"NaN": float("nan"), "Infinity": float("inf")}.get(want[5], want[5])
        assert got[:5] == want[:5]
        assert value == expected or (value != value and expected != expected)


def test_no_row_cap_and_an_explicit_limit(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    table = runstream.query("SELECT range AS i FROM range(250000)", url=server.http_url)
    assert table.num_rows == 250_000 and table.column("i")[-1].as_py() == 249_999
    with post(server.http_url, {"sql": "SELECT * FROM range(250000)", "limit": 70_000}) as reply:
        assert pa.ipc.open_stream(reply).read_all().num_rows == 70_000


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM run_meta", "SELECT * FROM read_csv('/etc/passwd')", "SELECT 1; SELECT 2", "SELECT nope FROM runs"],
)
def test_refusals_are_json_400s_before_anything_streams(served: tuple[ServerProcess, str], sql: str) -> None:
    server, _ = served
    status, content_type, body = refusal(server.http_url, {"sql": sql})
    assert status == 400 and content_type.startswith("application/json") and body["status"] == 400
    with pytest.raises(runstream.QueryError, match=body["error"][:40].replace("(", r"\(").replace(")", r"\)")):
        runstream.query(sql, url=server.http_url)


def test_an_error_duckdb_finds_before_the_first_batch_is_a_json_400(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    status, _, body = refusal(server.http_url, {"sql": "SELECT error('early') FROM range(10)"})
    assert status == 400 and "early" in body["error"]


def test_an_error_after_the_stream_started_cannot_pass_for_a_complete_answer(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    # The SDK raises the server's message.
    with pytest.raises(runstream.QueryError, match="boom at four million"):
        runstream.query(FAILS_LATE, url=server.http_url)
    # A plain Arrow reader gets the rows before the error, then the batch that carries it ...
    with post(server.http_url, {"sql": FAILS_LATE}) as reply:
        assert reply.status == 200
        reader = pa.ipc.open_stream(reply)
        rows, metadata = 0, None
        with pytest.raises((http.client.IncompleteRead, pa.ArrowInvalid, OSError)):
            while True:
                batch, metadata = reader.read_next_batch_with_custom_metadata()
                if metadata is not None:
                    break
                rows += batch.num_rows
            reader.read_next_batch()  # ... and then no end-of-stream marker: the body is cut short
    assert 0 < rows <= 4_000_000
    assert metadata is not None and b"boom at four million" in metadata[b"runstream.error"]
    assert metadata[b"runstream.status"] == b"400"
    # read_all() over the same answer fails too, rather than returning the first rows
    with post(server.http_url, {"sql": FAILS_LATE}) as reply, pytest.raises((http.client.IncompleteRead, OSError)):
        pa.ipc.open_stream(reply).read_all()


def test_the_server_goes_on_after_clients_leave_mid_stream(served: tuple[ServerProcess, str]) -> None:
    server, run_id = served
    body = json.dumps({"sql": "SELECT * FROM range(20000000)"}).encode()
    for _ in range(6):  # more than the server's reader cursors and its concurrent streams
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=TIMEOUT) as sock:
            sock.sendall(
                b"POST /api/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Accept: {ARROW}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    count = runstream.query(f"SELECT count(*) AS n FROM scalars WHERE run_id = '{run_id}'", url=server.http_url)
    assert count.column("n")[0].as_py() == 6000
    with urllib.request.urlopen(server.http_url + "/api/runs", timeout=TIMEOUT) as reply:
        assert len(json.load(reply)["runs"]) == 1


def test_the_page_reads_while_clients_hold_streams_open(served: tuple[ServerProcess, str]) -> None:
    server, run_id = served
    body = json.dumps({"sql": "SELECT * FROM range(50000000)"}).encode()
    held = []
    try:
        for _ in range(4):  # more than the streams that may run at once; none of them is read
            sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=TIMEOUT)
            sock.sendall(
                b"POST /api/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Accept: {ARROW}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            held.append(sock)
        with urllib.request.urlopen(server.http_url + f"/api/tags?runs={run_id}", timeout=TIMEOUT) as reply:
            assert sorted(json.load(reply)["scalars"]) == ["acc", "loss", "odd"]
        with post(server.http_url, {"sql": "SELECT 1 AS x"}, accept="application/json") as reply:
            assert json.load(reply)["rows"] == [[1]]
    finally:
        for sock in held:
            sock.close()
    assert runstream.query("SELECT 2 AS x", url=server.http_url).column("x")[0].as_py() == 2


def test_the_byte_cap_ends_the_answer_with_an_error(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", ("--sql-max-bytes", "2000000")) as server:
        small = runstream.query("SELECT * FROM range(100000)", url=server.http_url)  # 0.8 MB
        assert small.num_rows == 100_000
        with pytest.raises(runstream.QueryError, match=r"byte cap of 2,000,000 bytes \(1.91 MiB\)"):
            runstream.query("SELECT * FROM range(1000000)", url=server.http_url)  # 8 MB


def test_the_time_limit_counts_duckdbs_work_not_the_clients_reading(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", ("--sql-timeout", "1")) as server:
        with pytest.raises(runstream.QueryError, match="time limit of 1 s"):
            runstream.query("SELECT sum(a.range * b.range) FROM range(100000000) a, range(100) b", url=server.http_url)
        # A client that reads slowly (longer than the time limit in all) still gets the whole answer.
        with post(server.http_url, {"sql": "SELECT * FROM range(300000)"}) as reply:
            reader = pa.ipc.open_stream(reply)
            rows = 0
            for batch in reader:
                rows += batch.num_rows
                time.sleep(0.5)
        assert rows == 300_000
        assert runstream.query("SELECT 42 AS x", url=server.http_url).column("x")[0].as_py() == 42


def test_user_sqls_memory_budget_holds_for_the_arrow_answer(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data", ("--memory-limit", "1GB")) as server:
        hungry = "SELECT max(len(l)) AS n FROM (SELECT list(range) l FROM range(100000000))"
        with pytest.raises(runstream.QueryError, match="working memory"):
            runstream.query(hungry, url=server.http_url)
        assert runstream.query("SELECT 42 AS x", url=server.http_url).column("x")[0].as_py() == 42
