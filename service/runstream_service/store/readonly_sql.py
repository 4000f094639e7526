"""User SQL for the HTTP API (`POST /api/sql`, README "HTTP API"), read-only: checks, then one bounded execution.

The database connection is opened with ``enable_external_access=False``, so DuckDB itself refuses file
readers, COPY, ATTACH, INSTALL/LOAD and Python replacement scans. These checks come on top of that and
refuse before anything runs:

* exactly one statement (``duckdb.extract_statements``: the parser sees through comments), of type
  SELECT (which includes ``WITH``, ``VALUES``, ``TABLE x``, ``FROM x``, ``DESCRIBE``, ``SUMMARIZE`` and
  ``SHOW TABLES``), or ``EXPLAIN [ANALYZE]`` of such a SELECT;
* the parsed statement (DuckDB's own AST, from ``json_serialize_sql``) holds only reading query nodes:
  DuckDB classifies ``WITH x AS (INSERT ... RETURNING *) SELECT ...`` as a SELECT and runs the insert,
  so INSERT/UPDATE/DELETE query nodes anywhere in the tree are refused;
* no denied function anywhere in the tree, and none called by name in the text (a token scan outside
  string literals and comments, a second line of defence): file and external readers (``read_*``,
  ``glob``, ``sniff_csv``, ``parquet_*``, ``arrow_*``, ...), functions that run SQL given as text
  (``query``, ``query_table``, ``json_execute_serialized_sql``), functions with side effects
  (``checkpoint``, logging and profiling switches, ``setseed``, ``nextval``/``setval``, ``sleep_ms``,
  external resources, grammar extensions, ``write_log``) and leaks of server state
  (``current_setting``, ``getenv``, ``getvariable``, ``which_secret``, ``pragma_*``, and the ``duckdb_*``
  functions other than the catalog ones listed in ``ALLOWED_DUCKDB_FUNCTIONS``);
* no relation that is a file path (``FROM '/etc/passwd'``) or that shows settings, databases or logs
  (``pg_settings``, ``duckdb_databases``, ...); ``SHOW name`` (which shows a setting) is refused, use
  ``DESCRIBE name`` for a table's columns.

* no table form that reads a table named by a string (``FROM histogram('pg_settings', value)``: it goes
  through ``query_table``, past the relation checks); the aggregate ``histogram(x)`` is fine.

A statement that DuckDB cannot serialise (the PIVOT statement form) cannot be checked and is refused.
Every function of the installed DuckDB is classified (``function_policy``): a test fails on one that is
not, so an upgrade cannot bring a new reader that user SQL could call unnoticed.

``run_read_only`` then executes on a cursor within ``limited``: the watchdog (watchdog.py) interrupts it
past its time limit, when user SQL outgrows its own memory budget, or when the process nears its
memory bound. It fetches at most ``limit`` rows (DuckDB streams the result, so a large result is not
materialised; the rest is then cancelled) and converts the cells to JSON-safe values. The cursor stays
open and usable, also after an interruption.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import duckdb

from runstream_service.errors import BadRequest
from runstream_service.watchdog import (
    OVER_BUDGET,
    PROCESS_OVERHEAD,
    TIMEOUT,
    MemoryBudget,
    MemoryRefused,
    SqlWatchdog,
    process_watchdog,
)

MAX_SQL_CHARS = 20_000
MAX_LIMIT = 100_000
MAX_TIMEOUT_S = 60.0


class ReadOnlySqlError(BadRequest):
    """Any refusal or failure of user SQL; the HTTP answer is ``{"error": str(exc), "status": 400}``."""


class UnsafeSql(ReadOnlySqlError):
    """Refused before running: not exactly one read-only statement, or it uses something denied."""


class SqlTimeout(ReadOnlySqlError):
    """The query ran past its time limit and was interrupted."""


class SqlMemory(ReadOnlySqlError):
    """The query was stopped (or not started) to keep user SQL within its memory budget and the process
    within its bound (watchdog.py)."""


class SqlFailed(ReadOnlySqlError):
    """DuckDB refused the statement or failed while running it; the message is DuckDB's."""


# --- what is denied -------------------------------------------------------------------------------

DENIED_FUNCTIONS = frozenset(
    {
        # files and external data (refused by DuckDB too while external access is disabled)
        "glob",
        "sniff_csv",
        "seq_scan",
        "pandas_scan",
        "st_read",
        "sqlite_scan",
        "sqlite_attach",
        "postgres_scan",
        "postgres_attach",
        "mysql_scan",
        "delta_scan",
        "iceberg_scan",
        # SQL given as text
        "query",
        "query_table",
        "json_execute_serialized_sql",
        # side effects on the database, the session or the process
        "checkpoint",
        "force_checkpoint",
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "write_log",
        "enable_profiling",
        "disable_profiling",
        "add_grammar_extension",
        "remove_grammar_extension",
        "create_external_resource",
        "register_external_resource",
        "register_external_resource_type",
        "deregister_external_resource",
        "destroy_external_resource",
        "setseed",
        "nextval",
        "setval",
        "currval",
        "sleep_ms",
        "pg_sleep",
        "variant_bytes_to_variant",  # decodes raw bytes
        # server state
        "current_setting",
        "getenv",
        "getvariable",
        "which_secret",
        "load_aws_credentials",
        "get_block_size",  # a macro over pragma_database_size()
    }
)
DENIED_PREFIXES = (
    "read_",
    "parquet_",
    "pragma_",
    "duckdb_",
    "arrow_",
    "python_",
    "iceberg_",
    "delta_",
    "ducklake_",
    "postgres_",  # the lake's catalog: postgres_execute/postgres_query run SQL there (tests/lake)
    "pg_clear_cache",
    "json_execute",
)
# Catalog introspection, useful in a console and harmless: what tables, views, columns and functions exist.
ALLOWED_DUCKDB_FUNCTIONS = frozenset(
    {
        "duckdb_columns",
        "duckdb_constraints",
        "duckdb_dependencies",
        "duckdb_functions",
        "duckdb_indexes",
        "duckdb_keywords",
        "duckdb_schemas",
        "duckdb_sequences",
        "duckdb_tables",
        "duckdb_types",
        "duckdb_views",
    }
)
# Table functions (the kind file readers are) that user SQL may call: generators, expansions, catalog.
ALLOWED_TABLE_FUNCTIONS = ALLOWED_DUCKDB_FUNCTIONS | frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "repeat",
        "repeat_row",
        "json_each",
        "json_tree",
        "summary",
        "pg_timezone_names",
        "icu_calendar_names",
        "test_all_types",
        "test_vector_types",
    }
)
# Table forms that read any table named by a string argument (through query_table), past the relation
# checks: `FROM histogram('pg_settings', value)`. The aggregate histogram(x) stays allowed.
DENIED_TABLE_FUNCTIONS = frozenset({"histogram", "histogram_values"})
# Scalars that DuckDB does not declare as pure (they read the clock, the session or a random source)
# and that are harmless; the others of that kind are in DENIED_FUNCTIONS.
ALLOWED_IMPURE_FUNCTIONS = frozenset(
    {
        *("+", "-", "age", "century", "date_diff", "date_part", "date_sub", "date_trunc", "datediff"),
        *("datepart", "datesub", "datetrunc", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear"),
        *("decade", "era", "hour", "isodow", "isoyear", "julian", "last_day", "make_timestamptz"),
        *("microsecond", "millennium", "millisecond", "minute", "month", "monthname", "quarter", "second"),
        *("strftime", "time_bucket", "timezone", "timezone_hour", "timezone_minute", "week", "weekday"),
        *("weekofyear", "year", "yearweek", "generate_series", "range"),
        *("current_date", "current_localtime", "current_localtimestamp", "get_current_time"),
        *("get_current_timestamp", "now", "today", "transaction_timestamp"),
        *("random", "uuid", "uuidv4", "uuidv7", "gen_random_uuid", "error", "stats", "vector_type"),
        *("current_database", "current_schema", "current_schemas", "current_query", "in_search_path"),
        *("current_connection_id", "current_query_id", "current_transaction_id", "txid_current"),
    }
)
# Built-in views that show settings, database paths, logs or prepared statements.
DENIED_RELATIONS = frozenset({"pg_settings", "pg_prepared_statements", "pragma_database_list"})
# Query nodes that only read; anything else (INSERT_QUERY_NODE, UPDATE_QUERY_NODE, ...) is refused.
READING_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
# SHOW forms that list tables or databases; `SHOW name` shows a setting and `SHOW VARIABLES` variables.
ALLOWED_SHOW_SPECIAL = frozenset({"tables", "__show_tables_expanded", "databases"})

_PATH_CHARS = re.compile(r"[/\\.:*?~]")
_EXPLAIN = re.compile(r"\A\s*explain\s+(?:analy[sz]e\s+)?", re.IGNORECASE)


def denied_function(name: str) -> bool:
    """Whether a function (scalar, aggregate, table or macro) may not be called from user SQL."""
    name = name.lower()
    if name in ALLOWED_DUCKDB_FUNCTIONS:
        return False
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def function_policy(
    name: str, kind: str, stability: str | None, has_side_effects: bool | None, macro_definition: str | None
) -> str | None:
    """How user SQL may use a DuckDB function (one row of ``duckdb_functions()``): "denied", "allowed", or
    None while this policy has not classified it. A test lists every function of the installed DuckDB and
    fails on None, so that an upgrade cannot bring a new file reader that user SQL could call unnoticed."""
    lowered = name.lower()
    table_kind = kind in ("table", "table_macro")
    if kind == "pragma":  # called only by PRAGMA statements, and only SELECT runs
        return "denied"
    if denied_function(lowered) or (table_kind and lowered in DENIED_TABLE_FUNCTIONS):
        return "denied"
    if table_kind:
        return "allowed" if lowered in ALLOWED_TABLE_FUNCTIONS else None
    if kind == "macro":  # the checks see the macro's name, not its body: nothing denied may be in it
        try:
            _scan_calls(macro_definition or "")
        except UnsafeSql:
            return None
        return "allowed"
    if stability == "CONSISTENT" and has_side_effects is False:
        return "allowed"  # computes from its arguments alone, as DuckDB declares
    return "allowed" if lowered in ALLOWED_IMPURE_FUNCTIONS else None


def denied_relation(name: str) -> bool:
    """Whether a table or view name may not be read: file paths, and views of server state."""
    lowered = name.lower()
    if _PATH_CHARS.search(name):
        return True
    if lowered in ALLOWED_DUCKDB_FUNCTIONS:
        return False
    return lowered in DENIED_RELATIONS or lowered.startswith(("duckdb_", "pragma_"))


# --- tokens ---------------------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # word | ident | string | punct
    text: str  # a word lowercased, an identifier unquoted
    start: int
    end: int


_WORD = re.compile(r"[^\W\d]\w*|\d\w*", re.UNICODE)
_DOLLAR = re.compile(r"\$(?:[^\W\d]\w*)?\$", re.UNICODE)


def _tokens(sql: str) -> Iterator[_Token]:
    """A conservative lexer: skips whitespace and comments (nested block comments included) and yields
    words, quoted identifiers, string literals (plain, E'', dollar-quoted) and single punctuation."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "'":
            end = _quoted_end(sql, i, "'", backslash=_escape_string(sql, i))
            yield _Token("string", sql[i + 1 : end - 1], i, end)
            i = end
        elif c == '"':
            end = _quoted_end(sql, i, '"', backslash=False)
            yield _Token("ident", sql[i + 1 : end - 1].replace('""', '"'), i, end)
            i = end
        elif c == "$" and (m := _DOLLAR.match(sql, i)) is not None:
            close = sql.find(m.group(), m.end())
            end = n if close < 0 else close + len(m.group())
            yield _Token("string", sql[m.end() : close if close >= 0 else n], i, end)
            i = end
        elif (m := _WORD.match(sql, i)) is not None:
            yield _Token("word", m.group().lower(), i, m.end())
            i = m.end()
        else:
            yield _Token("punct", c, i, i + 1)
            i += 1


def _escape_string(sql: str, quote: int) -> bool:
    """An E'...' literal, where a backslash escapes the next character."""
    if quote == 0 or sql[quote - 1] not in "eE":
        return False
    return quote == 1 or not (sql[quote - 2].isalnum() or sql[quote - 2] == "_")


def _quoted_end(sql: str, start: int, quote: str, backslash: bool) -> int:
    """The index after the closing quote of the literal opened at `start` (doubled quotes escape one)."""
    i, n = start + 1, len(sql)
    while i < n:
        c = sql[i]
        if backslash and c == "\\":
            i += 2
        elif c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _trim(statement: str) -> str:
    """The statement without surrounding whitespace and without trailing semicolons and comments."""
    end = 0
    for token in _tokens(statement):
        if not (token.kind == "punct" and token.text == ";"):
            end = token.end
    return statement[:end].strip()


def _scan_calls(sql: str) -> None:
    """Refuse a denied function called by name (`name(`, `"name" (`, `schema.name(`), outside literals."""
    previous: _Token | None = None
    for token in _tokens(sql):
        if (
            token.kind == "punct"
            and token.text == "("
            and previous is not None
            and previous.kind in ("word", "ident")
            and denied_function(previous.text)
        ):
            raise UnsafeSql(_denied_function_message(previous.text))
        previous = token


def _denied_function_message(name: str) -> str:
    return (
        f"{name.lower()}() is not allowed: the SQL console reads the runstream views (runs, scalars, histograms, "
        "images) and nothing else: no files, settings or side effects"
    )


# --- statements -----------------------------------------------------------------------------------


class _Statement(NamedTuple):
    type: duckdb.StatementType
    query: str


def _one_statement(sql: str) -> _Statement:
    try:
        statements = [_Statement(s.type, s.query) for s in duckdb.extract_statements(sql)]
    except duckdb.Error as exc:
        raise SqlFailed(str(exc)) from None
    except ValueError:  # a statement type this Python package does not name (UPDATE EXTENSIONS)
        raise UnsafeSql("only a read-only SELECT statement is allowed") from None
    if not statements:
        raise UnsafeSql("no statement: the text holds only comments or semicolons; write one SELECT")
    if len(statements) > 1:
        raise UnsafeSql(f"exactly one statement is allowed, found {len(statements)}; send them one at a time")
    return statements[0]


def _kind(statement: _Statement) -> str:
    return str(statement.type.name).replace("_", " ")


def check_read_only(sql: str, max_chars: int = MAX_SQL_CHARS) -> str:
    """Refuse anything but one read-only SELECT (or EXPLAIN of one); return that statement, trimmed.

    Raises UnsafeSql (or SqlFailed with DuckDB's message for a syntax error)."""
    if not isinstance(sql, str):
        raise UnsafeSql("the query must be a string")
    if not sql.strip():
        raise UnsafeSql("the query is empty; write one SELECT statement")
    if len(sql) > max_chars:
        raise UnsafeSql(f"the query is {len(sql):,} characters long; the limit is {max_chars:,}")
    text = _trim(_one_statement(sql).query)
    statement = _one_statement(text)  # what runs is what is checked: check the trimmed text itself
    if statement.type == duckdb.StatementType.EXPLAIN:
        match = _EXPLAIN.match(text)
        if match is None or text[match.end() :].lstrip().startswith("("):
            raise UnsafeSql("only EXPLAIN SELECT ... or EXPLAIN ANALYZE SELECT ... is allowed")
        target = text[match.end() :]
        inner = _one_statement(target)
        if inner.type != duckdb.StatementType.SELECT:
            raise UnsafeSql(f"only a SELECT statement may be explained, not {_kind(inner)}")
    elif statement.type == duckdb.StatementType.SELECT:
        target = text
    elif statement.type == duckdb.StatementType.MULTI:  # the PIVOT statement: it creates types first
        raise UnsafeSql("only a read-only SELECT statement is allowed; write PIVOT as SELECT ... PIVOT (... IN (...))")
    else:
        raise UnsafeSql(f"only a read-only SELECT statement is allowed, not {_kind(statement)}")
    _scan_calls(target)
    _check_tree(_serialized(target))
    return text


_parser_lock = threading.Lock()
_parser_connection: duckdb.DuckDBPyConnection | None = None


def _serialized(select: str) -> Any:
    """DuckDB's parse tree of one SELECT, as JSON (parsed only: nothing is bound or run)."""
    global _parser_connection
    with _parser_lock:
        if _parser_connection is None:
            _parser_connection = duckdb.connect(":memory:", config={"enable_external_access": False})
        try:
            row = _parser_connection.execute("SELECT json_serialize_sql(?)", [select]).fetchone()
        except duckdb.Error as exc:
            raise SqlFailed(str(exc)) from None
    try:
        tree = json.loads(row[0]) if row is not None and isinstance(row[0], str) else None
    except RecursionError:
        raise UnsafeSql("the query is nested too deeply") from None
    except ValueError:
        tree = None
    if not isinstance(tree, dict):
        raise UnsafeSql("the query could not be checked")
    if tree.get("error"):
        raise UnsafeSql(
            f"this statement cannot be checked as read-only ({tree.get('error_message', 'unknown')}); "
            "write it as a plain SELECT"
        )
    return tree


def _check_tree(tree: Any) -> None:
    """Walk the whole parse tree: only reading query nodes, no denied function, table or SHOW."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if isinstance(kind, str):
            if kind.endswith("_NODE") and kind not in READING_QUERY_NODES:
                what = kind.removesuffix("_NODE").removesuffix("_QUERY").replace("_", " ")
                raise UnsafeSql(f"only reading is allowed: the statement contains {what}")
            if kind == "BASE_TABLE":
                _check_relation(node)
            elif kind == "SHOW_REF":
                _check_show(node)
            elif kind == "TABLE_FUNCTION":
                _check_table_function(node)
        name = node.get("function_name")
        if isinstance(name, str) and denied_function(name):
            raise UnsafeSql(_denied_function_message(name))
        stack.extend(node.values())


def _check_relation(node: dict[str, Any]) -> None:
    for key in ("table_name", "schema_name", "catalog_name"):
        name = node.get(key)
        if isinstance(name, str) and name and denied_relation(name):
            if _PATH_CHARS.search(name):
                raise UnsafeSql(f"reading files is not allowed ({name!r}); query the views runs, scalars, ...")
            raise UnsafeSql(f"{name} is not readable from the SQL console")


def _check_table_function(node: dict[str, Any]) -> None:
    function = node.get("function")
    name = function.get("function_name") if isinstance(function, dict) else None
    if isinstance(name, str) and name.lower() in DENIED_TABLE_FUNCTIONS:
        raise UnsafeSql(_denied_function_message(name) + f" (as a table; the aggregate {name.lower()}(x) is fine)")


def _check_show(node: dict[str, Any]) -> None:
    if node.get("query") is not None:  # DESCRIBE / SUMMARIZE of a table or query: the query is checked
        return
    show_type = node.get("show_type")
    name = str(node.get("table_name") or "").strip('"').lower()
    if show_type == "SHOW_FROM" or (show_type == "SHOW_SPECIAL" and name in ALLOWED_SHOW_SPECIAL):
        return
    raise UnsafeSql("SHOW of settings or variables is not allowed; use DESCRIBE view or SHOW TABLES")


# --- execution ------------------------------------------------------------------------------------


def run_read_only(
    cur: duckdb.DuckDBPyConnection, sql: str, limit: int, timeout: float, watchdog: SqlWatchdog | None = None
) -> dict[str, Any]:
    """Check `sql`, run it on `cur` for at most `timeout` seconds (capped at 60) and return at most
    `limit` rows (capped at 100,000): ``{"columns", "rows", "truncated", "elapsed_ms"}``, JSON-safe.

    `cur` is a cursor of a connection opened with enable_external_access=False; it is usable for the next
    query afterwards, also after a timeout. The query runs under `watchdog` (the process's by default):
    see limited(). Raises UnsafeSql, SqlTimeout, SqlMemory or SqlFailed (all status 400)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ReadOnlySqlError(f"limit must be a whole number >= 1, got {limit!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ReadOnlySqlError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    limit = min(limit, MAX_LIMIT)
    statement = check_read_only(sql)
    started = time.perf_counter()
    with limited(cur, timeout, watchdog):
        cur.execute(statement)
        columns = [str(d[0]) for d in cur.description or ()]
        fetched = cur.fetchmany(limit + 1)
        # Drop the rest of a streamed result now, not at the cursor's next query. DuckDB 1.5.5 (a lake
        # server's) has no abort(): there the rest goes at the next query.
        abort = getattr(cur, "abort", None)
        if abort is not None:
            abort()
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return {
        "columns": columns,
        "rows": [[json_safe(cell) for cell in row] for row in fetched[:limit]],
        "truncated": len(fetched) > limit,
        "elapsed_ms": round(elapsed_ms, 3),
    }


@contextmanager
def limited(cur: duckdb.DuckDBPyConnection, timeout: float, watchdog: SqlWatchdog | None = None) -> Iterator[None]:
    """Run the block (user SQL on `cur`, already checked) within the limits of user SQL, and turn DuckDB's
    errors into ours: at most `timeout` seconds (capped at 60; interrupted, and again until it stops, so
    the limit holds within a second) and within user SQL's memory budget and the process's memory bound
    (watchdog.py). Every route that runs user SQL runs it in here; `timeout` None leaves the time to the
    caller (the Arrow stream counts DuckDB's work only). Raises SqlTimeout, SqlMemory or SqlFailed (all
    status 400)."""
    timeout = None if timeout is None else min(float(timeout), MAX_TIMEOUT_S)
    guard = watchdog if watchdog is not None else process_watchdog(cur)
    try:
        with guard.watch(cur, timeout) as watch:
            try:
                yield
            except duckdb.Error as exc:
                if watch.reason is None and not isinstance(exc, duckdb.InterruptException):
                    raise SqlFailed(str(exc)) from None
                raise _stopped(watch.reason or TIMEOUT, timeout or MAX_TIMEOUT_S, guard.budget) from None
    except MemoryRefused:
        raise SqlMemory(
            f"the server is near its memory bound ({_gib(guard.budget.process_bytes)}: --memory-limit plus "
            f"{_gib(PROCESS_OVERHEAD)}), so no SQL query is started now; try again in a moment"
        ) from None


def _stopped(reason: str, timeout: float, budget: MemoryBudget) -> ReadOnlySqlError:
    if reason == TIMEOUT:
        return SqlTimeout(
            f"the query ran longer than the time limit of {timeout:g} s and was stopped; "
            "narrow it with WHERE (a run, a tag, a step range) or add LIMIT"
        )
    if reason == OVER_BUDGET:
        return SqlMemory(
            f"the query was stopped: SQL queries may use {_gib(budget.sql_bytes)} of working memory together "
            "(a quarter of --memory-limit), and this one, with any running beside it, needed more; narrow it "
            "with WHERE or LIMIT, or aggregate into fewer, smaller values (list() and string_agg() of many "
            "rows hold all of them)"
        )
    return SqlMemory(
        f"the query was stopped: the server neared its memory bound ({_gib(budget.process_bytes)}: "
        f"--memory-limit plus {_gib(PROCESS_OVERHEAD)}); narrow the query, or try again in a moment"
    )


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.2f} GiB" if size >= 1 << 30 else f"{size / (1 << 20):.0f} MiB"


def json_safe(value: Any) -> Any:
    """A cell as a value json.dumps(allow_nan=False) accepts: NaN and ±Inf as "NaN", "Infinity",
    "-Infinity"; bytes as "<N bytes>"; times as ISO 8601; decimals, UUIDs and the rest as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID, dt.timedelta)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(json_safe(k)): json_safe(v) for k, v in value.items()}
    return str(value)
