"""The lake's tests: DuckDB 1.5.5 with the lake extra, and a PostgreSQL for the catalog.

.ci/run makes that environment (a second venv, a PostgreSQL on loopback as a non-root user) and runs
these tests there with RUNSTREAM_LAKE_PG set to the server's libpq string; elsewhere they are skipped,
saying why (with RUNSTREAM_REQUIRE_LAKE=1, as .ci/run sets, they fail instead).
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from runstream_service.store.lake import LakeConfig

HERE = Path(__file__).parent


def _why_skipped() -> str | None:
    if duckdb.__version__ != "1.5.5":
        return f"the lake needs DuckDB 1.5.5 (this is {duckdb.__version__}): .ci/run runs these in its lake venv"
    if importlib.util.find_spec("duckdb_extension_ducklake") is None or importlib.util.find_spec("psycopg2") is None:
        return "the lake extra is not installed (pip install 'runstream[lake]')"
    if not os.environ.get("RUNSTREAM_LAKE_PG"):
        return "RUNSTREAM_LAKE_PG (a PostgreSQL libpq string) is not set: .ci/run starts one and sets it"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = _why_skipped()
    if why is None:
        return
    if os.environ.get("RUNSTREAM_REQUIRE_LAKE") == "1":  # .ci/run: a broken lake environment fails, not skips
        raise pytest.UsageError(f"RUNSTREAM_REQUIRE_LAKE=1 but {why}")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture
def lake_config(tmp_path: Path) -> Iterator[LakeConfig]:
    """A new, empty lake: its own PostgreSQL database and data directory."""
    import psycopg2  # type: ignore[import-untyped,import-not-found,unused-ignore]

    server = os.environ["RUNSTREAM_LAKE_PG"]
    name = f"lake_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{server} dbname=postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield LakeConfig(f"{server} dbname={name}", str(tmp_path / "lake-data"), move_seconds=0.2)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def lake_query(config: LakeConfig, sql: str) -> list[tuple[object, ...]]:
    """`sql` over the lake, from a separate read-only DuckDB connection (as a notebook would)."""
    from runstream_service.store import lake

    con = duckdb.connect()
    try:
        lake.attach(con, config, read_only=True)
        return con.execute(sql).fetchall()
    finally:
        con.close()
