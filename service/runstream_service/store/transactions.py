"""Two DuckDB steps the writer and the compactor both take: appending Arrow rows, and rolling back."""

from __future__ import annotations

import duckdb
import pyarrow as pa


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """Append `rows` (columns in the table's order) to `table` in one INSERT."""
    con.register("arrow_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM arrow_rows")
    finally:
        con.unregister("arrow_rows")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if there is one."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open
