"""The read-only SQL policy under DuckDB 1.5.5 with the lake's extensions loaded and the lake attached.

A lake server runs with external access on (DuckLake reads its catalog and files), so user SQL is held by
readonly_sql's checks alone: every function these extensions add must be classified, and the ones that
reach outside (postgres_execute, postgres_query, ducklake_*, the httpfs readers) refused.
"""

from __future__ import annotations

import duckdb
import pytest

from runstream_service.store import lake
from runstream_service.store.lake import LakeConfig
from runstream_service.store.readonly_sql import UnsafeSql, check_read_only, function_policy

FUNCTIONS = (
    "SELECT DISTINCT function_name, function_type, stability, has_side_effects, macro_definition "
    "FROM duckdb_functions()"
)


@pytest.fixture
def con(lake_config: LakeConfig) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"enable_external_access": True})
    lake.attach(con, lake_config)
    lake.create_schema(con)
    return con


def test_every_function_is_classified_with_the_lake_loaded(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(FUNCTIONS).fetchall()
    names = {name for name, *_ in rows}
    assert {"postgres_execute", "postgres_query", "ducklake_snapshots"} <= names  # the extensions are loaded
    unclassified = sorted({(name, kind) for name, kind, *rest in rows if function_policy(name, kind, *rest) is None})
    assert not unclassified, f"classify these in store/readonly_sql.py: {unclassified}"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM postgres_execute('lake', 'DROP TABLE x')",
        "SELECT * FROM postgres_query('lake', 'SELECT 1')",
        "SELECT * FROM ducklake_snapshots('lake')",
        "SELECT * FROM ducklake_merge_adjacent_files('lake')",
        "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    ],
)
def test_the_extensions_functions_are_refused(sql: str) -> None:
    with pytest.raises(UnsafeSql):
        check_read_only(sql)


def test_every_denied_table_function_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(FUNCTIONS + " WHERE function_type IN ('table', 'table_macro')").fetchall()
    denied = sorted({name for name, kind, *rest in rows if function_policy(name, kind, *rest) == "denied"})
    assert "postgres_execute" in denied
    for name in denied:
        with pytest.raises(UnsafeSql):
            check_read_only(f"SELECT * FROM {name}('lake')")
