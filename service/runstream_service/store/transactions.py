"""DuckDB steps the writer, the compactor and the lake's mover take: appending Arrow rows, rolling back, a
transaction, an Arrow table named in SQL for a while."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """Append `rows` (columns in the table's order) to `table` in one INSERT."""
    con.register("arrow_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM arrow_rows")
    finally:
        con.unregister("arrow_rows")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN, then COMMIT when the block ends, or ROLLBACK when it raises."""
    try:
        con.execute("BEGIN")
        yield
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[pa.Table]:
    """`table` readable as `name` in SQL on `con` within the block."""
    con.register(name, table)
    try:
        yield table
    finally:
        con.unregister(name)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if there is one."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open
