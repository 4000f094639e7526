"""User SQL is read-only (store/readonly_sql.py): escape attempts are refused before they run and change nothing;
ordinary SELECTs work, with a row cap, a time limit that interrupts, and JSON-safe cells.

Runs on a real DuckDB file opened as the server opens it: enable_external_access=False, one cursor per read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from runstream_service.store import readonly_sql
from runstream_service.store.readonly_sql import (
    MAX_LIMIT,
    MAX_TIMEOUT_S,
    ReadOnlySqlError,
    SqlFailed,
    SqlTimeout,
    UnsafeSql,
    check_read_only,
    function_policy,
    json_safe,
    run_read_only,
)
from runstream_service.store.schema import create_schema
from runstream_service.watchdog import MemoryBudget, SqlWatchdog

TABLES = (
    "run_meta",
    "run_ranks",
    "series",
    "scalar_points",
    "scalar_points_hot",
    "scalar_rollups",
    "histogram_points",
    "image_points",
    "writer_progress",
    "schema_info",
)
SLOW = "SELECT count(*) FROM range(1000000000) a, range(1000000000) b WHERE a.range + b.range = 7"


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(tmp_path / "runstream.duckdb"), config={"enable_external_access": False})
    create_schema(connection)
    connection.execute(
        """
        INSERT INTO run_meta VALUES
            ('r1', 'p', 'alpha', '{"lr": 0.1, "layers": [1, 2]}', 'finished', 1700000000.5, 1700000100.0, 'h1', 1),
            ('r2', 'p', 'beta', '{"lr": 0.01}', 'running', 1700000200.0, NULL, 'h2', 2);
        INSERT INTO run_ranks VALUES ('r1', 0, 'h1', 1700000000.5, 1700000100.0, 'finished'),
                                     ('r2', 0, 'h2', 1700000200.0, NULL, 'running');
        INSERT INTO series VALUES (1, 'r1', 'scalar', 'train/loss'), (2, 'r2', 'scalar', 'train/loss'),
                                  (3, 'r1', 'histogram', 'w'), (4, 'r1', 'image', 'sample');
        INSERT INTO scalar_points_hot VALUES
            (1, 0, 0, 1700000001.0, 1.0), (1, 1, 0, 1700000002.0, 0.5), (1, 2, 0, 1700000003.0, 'NaN'),
            (1, 3, 0, 1700000004.0, 'Infinity'), (1, 4, 0, 1700000005.0, '-Infinity'),
            (2, 0, 0, 1700000201.0, 2.0), (2, 1, 0, 1700000202.0, 1.5);
        INSERT INTO histogram_points VALUES (3, 0, 0, 1700000001.0, 3, 0, 2, 3, 5, [0.0, 1.0, 2.0], [1.0, 2.0]);
        INSERT INTO image_points VALUES (4, 0, 0, 1700000001.0, 1, 1, 'image/png', '\\x89PNG\\x0D\\x0A'::BLOB, NULL);
        INSERT INTO writer_progress VALUES ('w1', 7, 0);
        """
    )
    yield connection
    connection.close()


def fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Everything an escape could change: row counts, the run statuses, the catalog."""
    cur = con.cursor()
    try:
        counts = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
        statuses = cur.execute("SELECT run_id, status, name FROM run_meta ORDER BY run_id").fetchall()
        catalog = cur.execute("SELECT table_name, table_type FROM information_schema.tables ORDER BY ALL").fetchall()
        databases = cur.execute("SELECT database_name FROM duckdb_databases() ORDER BY 1").fetchall()
        return {"counts": counts, "statuses": statuses, "catalog": catalog, "databases": databases}
    finally:
        cur.close()


def run(con: duckdb.DuckDBPyConnection, sql: str, limit: int = 1000, timeout: float = 10.0) -> dict[str, Any]:
    cur = con.cursor()
    try:
        return run_read_only(cur, sql, limit, timeout)
    finally:
        cur.close()


# --- escapes ----------------------------------------------------------------------------------------

ESCAPES: dict[str, str] = {
    "insert": "INSERT INTO run_meta VALUES ('x', 'p', 'x', NULL, 'running', 0, NULL, NULL, 1)",
    "update": "UPDATE run_meta SET status = 'failed'",
    "delete": "DELETE FROM scalar_points",
    "truncate": "TRUNCATE scalar_points",
    "merge": "MERGE INTO run_meta USING run_meta s ON true WHEN MATCHED THEN DELETE",
    "create-table": "CREATE TABLE evil AS SELECT 1 AS x",
    "create-view": "CREATE OR REPLACE VIEW runs AS SELECT 1 AS run_id",
    "create-macro": "CREATE MACRO evil(x) AS x + 1",
    "create-secret": "CREATE SECRET (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "drop-view": "DROP VIEW runs",
    "drop-table": "DROP TABLE scalar_points",
    "alter": "ALTER TABLE run_meta ADD COLUMN evil INTEGER",
    "comment-on": "COMMENT ON TABLE run_meta IS 'evil'",
    "copy-to": "COPY run_meta TO '/tmp/runstream-escape.csv'",
    "copy-query-to": "COPY (SELECT * FROM runs) TO '/tmp/runstream-escape.parquet' (FORMAT parquet)",
    "copy-from": "COPY run_meta FROM '/etc/passwd'",
    "attach": "ATTACH '/tmp/runstream-escape.duckdb' AS evil",
    "detach": "DETACH DATABASE runstream",
    "use": "USE system",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "load-path": "LOAD '/tmp/evil.duckdb_extension'",
    "update-extensions": "UPDATE EXTENSIONS",
    "pragma": "PRAGMA database_list",
    "pragma-table-info": "PRAGMA table_info('runs')",
    "set-external-access": "SET enable_external_access = true",
    "set-memory": "SET memory_limit = '1MB'",
    "set-variable": "SET VARIABLE x = 1",
    "reset": "RESET memory_limit",
    "call": "CALL pragma_version()",
    "call-checkpoint": "CALL force_checkpoint()",
    "export": "EXPORT DATABASE '/tmp/runstream-escape-export'",
    "import": "IMPORT DATABASE '/tmp/runstream-escape-export'",
    "checkpoint": "CHECKPOINT",
    "force-checkpoint": "FORCE CHECKPOINT",
    "vacuum": "VACUUM",
    "begin": "BEGIN TRANSACTION",
    "commit": "COMMIT",
    "rollback": "ROLLBACK",
    "prepare": "PREPARE p AS SELECT 1",
    "execute": "EXECUTE p",
    "deallocate": "DEALLOCATE p",
    "read-csv": "SELECT * FROM read_csv('/etc/passwd')",
    "read-csv-list": "SELECT * FROM read_csv(['/etc/passwd', '/etc/hosts'])",
    "read-csv-auto": "SELECT * FROM read_csv_auto('/etc/passwd')",
    "read-parquet": "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "parquet-scan": "SELECT * FROM parquet_scan('/tmp/x.parquet')",
    "parquet-metadata": "SELECT * FROM parquet_metadata('/tmp/x.parquet')",
    "read-json": "SELECT * FROM read_json('/etc/passwd')",
    "read-ndjson": "SELECT * FROM read_ndjson_objects('/etc/passwd')",
    "read-text": "SELECT * FROM read_text('/etc/passwd')",
    "read-blob": "SELECT * FROM read_blob('/etc/passwd')",
    "read-duckdb": "SELECT * FROM read_duckdb('/tmp/runstream-escape.duckdb')",
    "sniff-csv": "SELECT * FROM sniff_csv('/etc/passwd')",
    "glob": "SELECT * FROM glob('/*')",
    "replacement-scan": "FROM '/etc/passwd'",
    "replacement-scan-select": "SELECT * FROM '/etc/passwd'",
    "replacement-scan-quoted": 'SELECT * FROM "data.csv"',
    "quoted-function": "SELECT * FROM \"read_text\"('/etc/passwd')",
    "qualified-function": "SELECT * FROM system.main.read_csv('/etc/passwd')",
    "comment-before-paren": "SELECT * FROM READ_CSV /* hidden */ ('/etc/passwd')",
    "nested-reader": "SELECT * FROM runs, (SELECT * FROM read_csv('/etc/passwd'))",
    "scalar-subquery-reader": "SELECT (SELECT content FROM read_text('/etc/passwd'))",
    "lateral-glob": "SELECT * FROM runs, LATERAL (SELECT * FROM glob('/*'))",
    "cte-reader": "WITH f AS (SELECT * FROM read_blob('/etc/passwd')) SELECT * FROM f",
    "two-statements": "SELECT 1; DROP TABLE runs",
    "two-statements-table": "SELECT 1; DELETE FROM run_meta",
    "block-comment-semicolon": "SELECT 1 /* ; */ ; DELETE FROM runs",
    "block-comment-semicolon-table": "SELECT 1 /* ; */ ; DELETE FROM run_meta",
    "line-comment-semicolon": "SELECT 1 -- \n; DELETE FROM runs",
    "line-comment-semicolon-table": "SELECT 1 -- \n; DELETE FROM run_meta",
    "dollar-quote-then-delete": "SELECT $$x$$; DELETE FROM run_meta",
    "cte-insert-returning": (
        "WITH x AS (INSERT INTO run_meta VALUES ('x', 'p', 'x', NULL, 'running', 0, NULL, NULL, 1) RETURNING *) "
        "SELECT * FROM x"
    ),
    "cte-delete-returning": "WITH x AS (DELETE FROM scalar_points RETURNING *) SELECT count(*) FROM x",
    "cte-update-returning": "WITH x AS (UPDATE run_meta SET status = 'failed' RETURNING *) SELECT * FROM x",
    "explain-delete": "EXPLAIN DELETE FROM run_meta",
    "explain-analyze-delete": "EXPLAIN ANALYZE DELETE FROM run_meta",
    "explain-analyze-cte-insert": (
        "EXPLAIN ANALYZE WITH x AS (INSERT INTO writer_progress VALUES ('w', 1) RETURNING *) SELECT * FROM x"
    ),
    "pivot-statement": "PIVOT run_meta ON status",
    "query-function": "SELECT * FROM query('DELETE FROM run_meta')",
    "query-table": "SELECT * FROM query_table('run_meta')",
    "execute-serialized": "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
    "checkpoint-function": "SELECT * FROM checkpoint()",
    "enable-logging": "SELECT * FROM enable_logging()",
    "arrow-scan": "SELECT * FROM arrow_scan(0, 0, 0)",
    "duckdb-secrets": "SELECT * FROM duckdb_secrets()",
    "which-secret": "SELECT * FROM which_secret('s3://bucket/x', 's3')",
    "duckdb-settings": "SELECT * FROM duckdb_settings()",
    "duckdb-databases": "SELECT path FROM duckdb_databases()",
    "duckdb-databases-view": "SELECT path FROM duckdb_databases",
    "pragma-database-list-view": "SELECT file FROM pragma_database_list",
    "pg-settings": "SELECT * FROM pg_settings",
    "pragma-function": "SELECT * FROM pragma_database_size()",
    "current-setting": "SELECT current_setting('temp_directory')",
    "current-setting-in-lambda": "SELECT list_transform([1], lambda x: current_setting('memory_limit'))",
    "getvariable": "SELECT getvariable('x')",
    "show-setting": "SHOW temp_directory",
    "show-variables": "SHOW VARIABLES",
    "describe-settings": "DESCRIBE SELECT * FROM duckdb_settings()",
    "setseed": "SELECT setseed(0.5)",
    "nextval": "SELECT nextval('s')",
    "sleep": "SELECT sleep_ms(10000)",
    "write-log": "SELECT write_log('x')",
    "too-long": "SELECT " + "1" * 100_000,
    "empty": "",
    "blank": "  \n\t  ",
    "only-line-comment": "-- only a comment",
    "only-block-comment": "/* only a comment */",
    "only-semicolons": " ; ; ",
    "unterminated-comment": "SELECT 1 /* never closed",
}


def test_enough_escapes() -> None:
    assert len(ESCAPES) >= 30


@pytest.mark.parametrize("sql", list(ESCAPES.values()), ids=list(ESCAPES))
def test_escape_is_refused_and_changes_nothing(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    before = fingerprint(con)
    with pytest.raises(ReadOnlySqlError) as refused:
        run(con, sql)
    assert refused.value.status == 400
    assert str(refused.value)
    # refused by the checks, before anything ran: nothing relies on DuckDB's own refusal alone
    with pytest.raises(ReadOnlySqlError):
        check_read_only(sql)
    assert fingerprint(con) == before
    # and the connection still serves reads
    assert run(con, "SELECT count(*) AS n FROM runs")["rows"] == [[2]]


@pytest.mark.parametrize("sql", list(ESCAPES.values()), ids=list(ESCAPES))
def test_parse_tree_check_alone_refuses(monkeypatch: pytest.MonkeyPatch, sql: str) -> None:
    """The token scan is a second line of defence: without it every escape is still refused."""
    monkeypatch.setattr(readonly_sql, "_scan_calls", lambda text: None)
    with pytest.raises(ReadOnlySqlError):
        check_read_only(sql)


def test_duckdb_runs_a_write_hidden_in_a_select(con: duckdb.DuckDBPyConnection) -> None:
    """Why the parse tree is checked: DuckDB calls this statement a SELECT, and runs the insert."""
    sql = "WITH x AS (INSERT INTO writer_progress VALUES ('w2', 1, 0) RETURNING *) SELECT * FROM x"
    assert [s.type for s in duckdb.extract_statements(sql)] == [duckdb.StatementType.SELECT]
    con.execute(sql)
    assert con.execute("SELECT count(*) FROM writer_progress").fetchall() == [(2,)]


def test_refusal_messages_say_what_and_why() -> None:
    with pytest.raises(UnsafeSql, match="20,000"):
        check_read_only("SELECT " + "1" * 100_000)
    with pytest.raises(UnsafeSql, match="exactly one statement"):
        check_read_only("SELECT 1 /* ; */ ; DELETE FROM runs")
    with pytest.raises(UnsafeSql, match="empty"):
        check_read_only("   ")
    with pytest.raises(UnsafeSql, match="no statement"):
        check_read_only("-- nothing")
    with pytest.raises(UnsafeSql, match="not DELETE"):
        check_read_only("DELETE FROM run_meta")
    with pytest.raises(UnsafeSql, match="contains INSERT"):
        check_read_only("WITH x AS (INSERT INTO writer_progress VALUES ('w', 1) RETURNING *) SELECT * FROM x")
    with pytest.raises(UnsafeSql, match=r"read_text\(\) is not allowed"):
        check_read_only("SELECT * FROM read_text('/etc/passwd')")
    with pytest.raises(UnsafeSql, match="reading files"):
        check_read_only("FROM '/etc/passwd'")
    with pytest.raises(SqlFailed, match="syntax error"):
        check_read_only("SELEC 1")
    assert check_read_only("SELECT 1", max_chars=8) == "SELECT 1"
    with pytest.raises(UnsafeSql, match="limit is 7"):
        check_read_only("SELECT 1", max_chars=7)


def test_denied_names_in_literals_or_comments_are_fine(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT 'read_csv(' AS a, $$glob($$ AS b, E'\\'query(' AS c, \"read_text\" "
        'FROM (SELECT 1 AS "read_text") -- current_setting('
    )
    assert run(con, sql)["rows"] == [["read_csv(", "glob(", "'query(", 1]]


# --- what works -------------------------------------------------------------------------------------


def test_check_returns_the_trimmed_statement() -> None:
    assert check_read_only("  SELECT 1;  ") == "SELECT 1"
    assert check_read_only("SELECT 1; -- done") == "SELECT 1"
    assert check_read_only("/* why */ SELECT 1 -- c\n;;") == "/* why */ SELECT 1"
    assert check_read_only("SELECT 1 -- \n;") == "SELECT 1"


def test_select_from_the_views(con: duckdb.DuckDBPyConnection) -> None:
    result = run(con, "SELECT run_id, name, status FROM runs ORDER BY run_id")
    assert result["columns"] == ["run_id", "name", "status"]
    assert result["rows"] == [["r1", "alpha", "finished"], ["r2", "beta", "running"]]
    assert result["truncated"] is False
    assert isinstance(result["elapsed_ms"], float) and result["elapsed_ms"] >= 0


def test_with_join_aggregate_and_json(con: duckdb.DuckDBPyConnection) -> None:
    sql = """
        -- the last finite loss of every run, with its learning rate
        WITH finite AS (SELECT * FROM scalars WHERE isfinite(value))
        SELECT r.name, r.config->>'lr' AS lr, arg_max(s.value, s.step) AS last_loss, count(*) AS n
        FROM finite s JOIN runs r USING (run_id)
        WHERE s.tag = 'train/loss'
        GROUP BY ALL ORDER BY r.name;
    """
    result = run(con, sql)
    assert result["columns"] == ["name", "lr", "last_loss", "n"]
    assert result["rows"] == [["alpha", "0.1", 0.5, 2], ["beta", "0.01", 1.5, 2]]


@pytest.mark.parametrize(
    "sql",
    [
        "FROM runs SELECT name",
        "TABLE runs",
        "VALUES (1), (2)",
        "SELECT 1 UNION ALL SELECT 2",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        "SELECT step, value, avg(value) OVER (ORDER BY step ROWS 2 PRECEDING) FROM scalars WHERE run_id = 'r1'",
        "SELECT * FROM runs PIVOT (count(*) FOR status IN ('running', 'finished'))",
        "SELECT unnest(bucket_counts) FROM histograms",
        "SELECT * FROM range(3)",
        "DESCRIBE runs",
        "SUMMARIZE scalars",
        "SHOW TABLES",
        "SHOW ALL TABLES",
        "SELECT table_name FROM information_schema.tables",
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'runs'",
        "EXPLAIN SELECT * FROM scalars WHERE step > 1",
        "EXPLAIN ANALYZE SELECT count(*) FROM scalars",
    ],
)
def test_read_only_forms_are_allowed(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    result = run(con, sql)
    assert result["columns"]
    assert result["rows"]
    json.dumps(result, allow_nan=False)


def test_row_cap_truncates(con: duckdb.DuckDBPyConnection) -> None:
    capped = run(con, "SELECT range AS i FROM range(50)", limit=10)
    assert capped["rows"] == [[i] for i in range(10)]
    assert capped["truncated"] is True
    exact = run(con, "SELECT range AS i FROM range(50)", limit=50)
    assert len(exact["rows"]) == 50 and exact["truncated"] is False


def test_limit_is_capped(con: duckdb.DuckDBPyConnection) -> None:
    result = run(con, f"SELECT range FROM range({MAX_LIMIT + 5})", limit=10**9)
    assert len(result["rows"]) == MAX_LIMIT
    assert result["truncated"] is True


def test_huge_result_is_streamed_not_materialised(con: duckdb.DuckDBPyConnection) -> None:
    cur = con.cursor()
    try:
        started = time.monotonic()
        result = run_read_only(cur, "SELECT range, repeat('x', 100) FROM range(2000000000)", 5, 5.0)
        assert len(result["rows"]) == 5 and result["truncated"] is True
        assert time.monotonic() - started < 3
        # the rest of the result was cancelled: the cursor answers the next query
        assert run_read_only(cur, "SELECT count(*) FROM runs", 5, 5.0)["rows"] == [[2]]
    finally:
        cur.close()


@pytest.mark.parametrize(
    ("limit", "timeout"), [(0, 1.0), (-1, 1.0), (True, 1.0), (10, 0), (10, -1), (10, float("nan"))]
)
def test_bad_limit_or_timeout(con: duckdb.DuckDBPyConnection, limit: int, timeout: float) -> None:
    with pytest.raises(ReadOnlySqlError):
        run(con, "SELECT 1", limit=limit, timeout=timeout)


def test_timeout_interrupts_and_the_cursor_works_afterwards(con: duckdb.DuckDBPyConnection) -> None:
    cur = con.cursor()
    try:
        started = time.monotonic()
        with pytest.raises(SqlTimeout) as timed_out:
            run_read_only(cur, SLOW, 10, 0.2)
        took = time.monotonic() - started
        assert took < 5, took
        message = str(timed_out.value)
        assert "0.2 s" in message and "WHERE" in message and "LIMIT" in message
        assert timed_out.value.status == 400
        assert run_read_only(cur, "SELECT count(*) FROM scalars", 10, 5.0)["rows"] == [[7]]
        # a query that finishes in time is never interrupted afterwards by its timer
        assert run_read_only(cur, "SELECT 1", 10, 0.05)["rows"] == [[1]]
        time.sleep(0.15)
        assert run_read_only(cur, "SELECT 2", 10, 5.0)["rows"] == [[2]]
    finally:
        cur.close()


def test_timeout_is_capped(con: duckdb.DuckDBPyConnection) -> None:
    timeouts: list[float] = []

    class Spy(SqlWatchdog):
        def watch(self, cursor: duckdb.DuckDBPyConnection, timeout: float) -> Any:
            timeouts.append(timeout)
            return super().watch(cursor, timeout)

    cur = con.cursor()
    try:
        run_read_only(cur, "SELECT 1", 10, 3600, Spy(MemoryBudget.for_memory_limit(1 << 30)))
    finally:
        cur.close()
    assert timeouts == [MAX_TIMEOUT_S]


def test_duckdb_errors_come_back_with_duckdbs_message(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(SqlFailed, match="nonexistent"):
        run(con, "SELECT * FROM nonexistent")
    with pytest.raises(SqlFailed, match="Binder Error"):
        run(con, "SELECT no_such_column FROM runs")


def test_cells_are_json_safe(con: duckdb.DuckDBPyConnection) -> None:
    scalars = run(con, "SELECT value FROM scalars WHERE run_id = 'r1' ORDER BY step")
    assert [row[0] for row in scalars["rows"]] == [1.0, 0.5, "NaN", "Infinity", "-Infinity"]
    image = run(con, "SELECT data FROM images")
    assert image["rows"] == [["<6 bytes>"]]
    times = run(con, "SELECT created_at, finished_at, created_at::DATE FROM runs ORDER BY run_id")
    assert times["rows"][0] == ["2023-11-14T22:13:20.500000", "2023-11-14T22:15:00", "2023-11-14"]
    assert times["rows"][1][1] is None
    mixed = run(
        con,
        "SELECT 1.25::DECIMAL(10, 2) AS d, '00000000-0000-0000-0000-000000000001'::UUID AS u, "
        "[1.0, 'NaN'::DOUBLE, 'Infinity'::DOUBLE] AS l, {'a': 'NaN'::DOUBLE, 'b': '\\x00'::BLOB} AS s, "
        "MAP {'k': [1, 2]} AS m, INTERVAL 90 MINUTE AS i, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS tz, "
        "TIME '01:02:03' AS t, bucket_limits FROM histograms",
    )
    row = mixed["rows"][0]
    assert row[:3] == ["1.25", "00000000-0000-0000-0000-000000000001", [1.0, "NaN", "Infinity"]]
    assert row[3] == {"a": "NaN", "b": "<1 bytes>"}
    assert row[4] == {"k": [1, 2]}
    assert row[5] == "1:30:00"
    assert row[6].startswith("2024-01-01T")
    assert row[7] == "01:02:03"
    assert row[8] == [0.0, 1.0, 2.0]
    for result in (scalars, image, times, mixed):
        json.dumps(result, allow_nan=False)


def test_every_duckdb_type_is_json_safe(con: duckdb.DuckDBPyConnection) -> None:
    result = run(con, "SELECT * FROM test_all_types()")
    assert len(result["rows"]) == 3
    json.dumps(result, allow_nan=False)


def test_json_safe_values() -> None:
    assert json_safe(float("nan")) == "NaN"
    assert json_safe(float("inf")) == "Infinity"
    assert json_safe(float("-inf")) == "-Infinity"
    assert json_safe(b"abc") == "<3 bytes>"
    assert json_safe(memoryview(b"ab")) == "<2 bytes>"
    assert json_safe((1, [float("nan"), {"x": b""}])) == [1, ["NaN", {"x": "<0 bytes>"}]]
    assert json_safe(True) is True and json_safe(None) is None and json_safe(3) == 3


def test_concurrent_reads_on_separate_cursors(con: duckdb.DuckDBPyConnection) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                results.append(run(con, "SELECT count(*) FROM scalars s JOIN runs USING (run_id)")["rows"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [[[7]]] * 80


# -- every function DuckDB has is classified ---------------------------------------------------------------


def test_every_duckdb_function_is_classified(con: duckdb.DuckDBPyConnection) -> None:
    """A DuckDB upgrade that adds a function (a new file reader, say) fails here until the policy names it."""
    rows = con.execute(
        "SELECT DISTINCT function_name, function_type, stability, has_side_effects, macro_definition "
        "FROM duckdb_functions()"
    ).fetchall()
    assert len(rows) > 500
    unclassified = sorted({(name, kind) for name, kind, *rest in rows if function_policy(name, kind, *rest) is None})
    assert not unclassified, (
        f"{len(unclassified)} DuckDB function(s) the read-only SQL policy does not know: {unclassified}. "
        "Classify each in store/readonly_sql.py: DENIED_FUNCTIONS (files, settings, side effects) or "
        "ALLOWED_TABLE_FUNCTIONS / ALLOWED_IMPURE_FUNCTIONS (harmless)"
    )


def test_unknown_functions_are_unclassified() -> None:
    assert function_policy("read_new_format", "table", None, None, None) == "denied"
    assert function_policy("new_reader", "table", None, None, None) is None
    assert function_policy("new_clock", "scalar", "VOLATILE", True, None) is None
    assert function_policy("new_macro", "macro", None, None, "SELECT * FROM read_csv('f')") is None
    assert function_policy("abs", "scalar", "CONSISTENT", False, None) == "allowed"
    assert function_policy("range", "table", None, None, None) == "allowed"


def test_every_denied_table_function_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT DISTINCT function_name, function_type, stability, has_side_effects, macro_definition "
        "FROM duckdb_functions() WHERE function_type IN ('table', 'table_macro')"
    ).fetchall()
    denied = sorted({name for name, kind, *rest in rows if function_policy(name, kind, *rest) == "denied"})
    assert "read_csv" in denied and "histogram_values" in denied
    for name in denied:
        with pytest.raises(UnsafeSql):
            check_read_only(f"SELECT * FROM {name}('runs')")


def test_histogram_reads_no_table_by_name_but_aggregates(con: duckdb.DuckDBPyConnection) -> None:
    for sql in (
        "SELECT * FROM histogram('pg_settings', value)",
        "SELECT * FROM histogram_values('pg_settings', value)",
    ):
        with pytest.raises(UnsafeSql, match="histogram"):
            check_read_only(sql)
    rows = run(con, "SELECT histogram(step) AS h FROM scalars")["rows"]
    assert rows and isinstance(rows[0][0], dict)
