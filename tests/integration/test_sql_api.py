"""POST /api/sql on a real `runstream serve` (README "HTTP API"): one read-only statement;
every escape attempt gets a JSON 400, the server keeps serving and the data stays as it was."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runstream
from support import ServerProcess

ESCAPES: dict[str, str] = {
    "insert": "INSERT INTO run_meta SELECT * FROM run_meta",
    "update": "UPDATE run_meta SET status = 'failed'",
    "delete": "DELETE FROM scalar_points",
    "create-table": "CREATE TABLE evil AS SELECT 1 AS x",
    "create-view": "CREATE OR REPLACE VIEW runs AS SELECT 1 AS run_id",
    "drop-view": "DROP VIEW runs",
    "drop-table": "DROP TABLE scalar_points",
    "alter": "ALTER TABLE run_meta ADD COLUMN evil INTEGER",
    "copy-to": "COPY run_meta TO '/tmp/runstream-escape.csv'",
    "copy-query-to": "COPY (SELECT * FROM runs) TO '/tmp/runstream-escape.parquet' (FORMAT parquet)",
    "copy-from": "COPY run_meta FROM '/etc/passwd'",
    "attach": "ATTACH '/tmp/runstream-escape.duckdb' AS evil",
    "detach": "DETACH DATABASE runstream",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "pragma": "PRAGMA database_list",
    "set": "SET enable_external_access = true",
    "reset": "RESET memory_limit",
    "call": "CALL pragma_version()",
    "export": "EXPORT DATABASE '/tmp/runstream-escape-export'",
    "import": "IMPORT DATABASE '/tmp/runstream-escape-export'",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    "begin": "BEGIN TRANSACTION",
    "commit": "COMMIT",
    "read-csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read-csv-auto": "SELECT * FROM read_csv_auto('/etc/passwd')",
    "read-parquet": "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "read-json": "SELECT * FROM read_json('/etc/passwd')",
    "read-text": "SELECT * FROM read_text('/etc/passwd')",
    "read-blob": "SELECT * FROM read_blob('/etc/passwd')",
    "glob": "SELECT * FROM glob('/*')",
    "replacement-scan": "FROM '/etc/passwd'",
    "quoted-function": "SELECT * FROM \"read_text\"('/etc/passwd')",
    "nested-reader": "SELECT * FROM runs, (SELECT * FROM read_csv('/etc/passwd'))",
    "two-statements": "SELECT 1; DROP TABLE runs",
    "block-comment-semicolon": "SELECT 1 /* ; */ ; DELETE FROM runs",
    "line-comment-semicolon": "SELECT 1 -- \n; DELETE FROM runs",
    "two-statements-table": "SELECT 1; DELETE FROM run_meta",
    "cte-insert-returning": "WITH x AS (INSERT INTO run_meta SELECT * FROM run_meta RETURNING *) SELECT * FROM x",
    "cte-delete-returning": "WITH x AS (DELETE FROM scalar_points RETURNING *) SELECT count(*) FROM x",
    "explain-analyze-delete": "EXPLAIN ANALYZE DELETE FROM run_meta",
    "query-function": "SELECT * FROM query('DELETE FROM run_meta')",
    "duckdb-secrets": "SELECT * FROM duckdb_secrets()",
    "duckdb-settings": "SELECT * FROM duckdb_settings()",
    "duckdb-databases": "SELECT path FROM duckdb_databases()",
    "pg-settings": "SELECT * FROM pg_settings",
    "current-setting": "SELECT current_setting('temp_directory')",
    "show-setting": "SHOW temp_directory",
    "checkpoint-function": "SELECT * FROM force_checkpoint()",
    "too-long": "SELECT " + "1" * 100_000,
    "empty": "",
    "only-comment": "-- only a comment",
}
SLOW = "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range + b.range = 7"
FINGERPRINT = """
    SELECT (SELECT count(*) FROM runs) AS runs,
           (SELECT string_agg(status, ',' ORDER BY run_id) FROM runs) AS statuses,
           (SELECT count(*) FROM scalars) AS scalars,
           (SELECT count(*) FROM histograms) AS histograms,
           (SELECT count(*) FROM images) AS images,
           (SELECT count(*) FROM writer_progress) AS writers,
           (SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables) AS relations
"""


def _strict_constant(name: str) -> Any:
    raise ValueError(f"the reply holds {name}, which is not JSON")


def post_sql(server: ServerProcess, body: Any, timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/api/sql",
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read(), parse_constant=_strict_constant)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read(), parse_constant=_strict_constant)


def healthz(server: ServerProcess) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/healthz", timeout=5) as reply:
        return int(reply.status)


def fingerprint(server: ServerProcess) -> list[Any]:
    status, reply = post_sql(server, {"sql": FINGERPRINT})
    assert status == 200, reply
    rows: list[Any] = reply["rows"]
    return rows


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose SQL time limit is 1 s, with two finished runs: scalars (NaN and ±Inf among them),
    a histogram and an image."""
    server = ServerProcess(tmp_path / "data", ("--sql-timeout", "1")).start()
    for name, lr in (("alpha", 0.1), ("beta", 0.01)):
        run = runstream.init(project="p", name=name, config={"lr": lr}, server=server.address)
        for step in range(10):
            run.log({"loss": 1.0 / (step + 1) / lr, "odd": [math.nan, math.inf, -math.inf, 0.5][step % 4]}, step=step)
        if name == "alpha":
            run.log_histogram("w", np.arange(100, dtype=np.float32), step=1, bins=5)
            run.log_image("img", (np.arange(8 * 8 * 3) % 251).astype(np.uint8).reshape(8, 8, 3), step=1)
        run.finish()
    deadline = time.monotonic() + 30
    while fingerprint(server)[0][2] < 40 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield server
    server.stop()


def test_every_escape_gets_400_and_changes_nothing(logged: ServerProcess) -> None:
    before = fingerprint(logged)
    assert before[0][:6] == [2, "finished,finished", 40, 1, 1, before[0][5]]
    failures: list[str] = []
    for name, sql in ESCAPES.items():
        status, reply = post_sql(logged, {"sql": sql})
        if status != 400 or reply.get("status") != 400 or not reply.get("error"):
            failures.append(f"{name}: HTTP {status} {reply}")
        if healthz(logged) != 200:
            failures.append(f"{name}: /healthz stopped answering 200")
        after = fingerprint(logged)
        if after != before:
            failures.append(f"{name}: the data changed: {before} -> {after}")
    assert not failures, "\n".join(failures)
    assert len(ESCAPES) >= 30


def test_refusals_explain_themselves(logged: ServerProcess) -> None:
    status, reply = post_sql(logged, {"sql": "SELECT 1 /* ; */ ; DELETE FROM runs"})
    assert (status, reply["status"]) == (400, 400) and "exactly one statement" in reply["error"]
    status, reply = post_sql(logged, {"sql": "SELECT * FROM read_csv('/etc/passwd')"})
    assert status == 400 and "read_csv() is not allowed" in reply["error"]
    status, reply = post_sql(logged, {"sql": "SELECT * FROM no_such_view"})
    assert status == 400 and "no_such_view" in reply["error"]
    status, reply = post_sql(logged, {"sql": "SELECT " + "1" * 100_000})
    assert status == 400 and "20,000" in reply["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        {"query": "SELECT 1"},
        {"sql": 1},
        {"sql": "SELECT 1", "limit": 0},
        {"sql": "SELECT 1", "limit": "x"},
    ],
    ids=["not-json", "no-sql", "sql-not-text", "limit-0", "limit-text"],
)
def test_bad_bodies_get_400(logged: ServerProcess, body: Any) -> None:
    status, reply = post_sql(logged, body)
    assert (status, reply["status"]) == (400, 400) and reply["error"]


def test_good_query_returns_rows(logged: ServerProcess) -> None:
    sql = """
        SELECT r.name, r.config->>'lr' AS lr, arg_max(s.value, s.step) AS last_loss, count(*) AS n
        FROM scalars s JOIN runs r USING (run_id)
        WHERE r.project = 'p' AND r.status = 'finished' AND s.tag = 'loss'
        GROUP BY ALL ORDER BY r.name
    """
    status, reply = post_sql(logged, {"sql": sql})
    assert status == 200, reply
    assert reply["columns"] == ["name", "lr", "last_loss", "n"]
    assert [row[:2] + row[3:] for row in reply["rows"]] == [["alpha", "0.1", 10], ["beta", "0.01", 10]]
    assert reply["rows"][0][2] == pytest.approx(1.0 / 10 / 0.1)
    assert reply["truncated"] is False and reply["elapsed_ms"] >= 0


def test_non_finite_blob_and_time_cells_are_json(logged: ServerProcess) -> None:
    status, reply = post_sql(
        logged, {"sql": "SELECT value FROM scalars WHERE tag = 'odd' ORDER BY run_id, step LIMIT 4"}
    )
    assert status == 200, reply
    assert [row[0] for row in reply["rows"]] == ["NaN", "Infinity", "-Infinity", 0.5]
    status, reply = post_sql(logged, {"sql": "SELECT data, mime, created_at FROM images JOIN runs USING (run_id)"})
    assert status == 200, reply
    ((data, mime, created_at),) = reply["rows"]
    assert data.startswith("<") and data.endswith(" bytes>") and mime == "image/png"
    assert isinstance(created_at, str) and "T" in created_at


def test_row_cap(logged: ServerProcess) -> None:
    status, reply = post_sql(logged, {"sql": "SELECT * FROM scalars ORDER BY run_id, tag, step", "limit": 7})
    assert status == 200, reply
    assert len(reply["rows"]) == 7 and reply["truncated"] is True


@pytest.mark.slow
def test_slow_query_is_stopped_and_the_server_keeps_serving(logged: ServerProcess) -> None:
    before = fingerprint(logged)
    answer: dict[str, Any] = {}

    def slow() -> None:
        started = time.monotonic()
        answer["reply"] = post_sql(logged, {"sql": SLOW}, timeout=120)
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    while thread.is_alive():  # other requests are answered while the slow one runs
        assert healthz(logged) == 200
        assert fingerprint(logged) == before
        time.sleep(0.5)
    thread.join()
    status, reply = answer["reply"]
    assert (status, reply["status"]) == (400, 400), reply
    assert "time limit" in reply["error"] and "WHERE" in reply["error"] and "LIMIT" in reply["error"]
    assert answer["seconds"] < 60
    assert healthz(logged) == 200
    assert fingerprint(logged) == before
