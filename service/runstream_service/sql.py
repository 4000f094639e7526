"""`runstream sql`: run a query against a runstream database file and format the result."""

from __future__ import annotations

import csv
import io
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from runstream_service.settings import DATABASE_FILE
from runstream_service.store.lake import without_the_lake
from runstream_service.store.readonly_sql import json_safe

FORMATS = ("table", "csv", "json")


class SqlError(RuntimeError):
    pass


def query_file(data_dir: Path, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `query` on the database in `data_dir`, opened read-only."""
    path = data_dir / DATABASE_FILE
    if not path.exists():
        raise SqlError(f"no runstream database at {path}; pass --data DIR of a `runstream serve`")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise SqlError(
            f"cannot open {path} read-only: {exc}. A running server holds it; stop the server, or query "
            "through its HTTP API once the dashboard is available"
        ) from None
    try:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description or ()]
        return columns, cursor.fetchall()
    except duckdb.Error as exc:
        raise SqlError(without_the_lake(exc)) from None
    finally:
        con.close()


def query_url(url: str, query: str, limit: int = 100_000) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `query` through a running server's read-only SQL endpoint (POST /api/sql).

    Sends RUNSTREAM_TOKEN as a bearer token when set; trusts RUNSTREAM_TLS_CA for https:// when set.
    """
    body = json.dumps({"sql": query, "limit": limit}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("RUNSTREAM_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['RUNSTREAM_TOKEN']}"
    context = None
    if os.environ.get("RUNSTREAM_TLS_CA") and url.startswith("https://"):
        context = ssl.create_default_context(cafile=os.environ["RUNSTREAM_TLS_CA"])
    request = urllib.request.Request(url.rstrip("/") + "/api/sql", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120, context=context) as reply:
            answer = json.load(reply)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc)["error"]
        except (ValueError, KeyError):
            message = f"HTTP {exc.code}"
        raise SqlError(message) from None
    except urllib.error.URLError as exc:
        raise SqlError(f"cannot reach {url}: {exc.reason}; is `runstream serve` running there?") from None
    if answer.get("truncated"):
        print(f"runstream sql: only the first {limit} rows", file=sys.stderr)
    return list(answer["columns"]), [tuple(row) for row in answer["rows"]]


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    if fmt == "json":
        # The cells as the HTTP API gives them (NaN and ±Inf as "NaN", "Infinity", "-Infinity"; times in
        # ISO 8601), so that --data and --url print the same JSON.
        return json.dumps([dict(zip(columns, map(json_safe, row))) for row in rows], allow_nan=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[str(c) for c in columns]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    return str(value)
