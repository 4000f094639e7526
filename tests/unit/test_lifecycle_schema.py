"""Schema 5 (run labels, deleted runs): a version 4 file, made with version 4's own DDL, opens and keeps its data."""

from __future__ import annotations

import subprocess
import types
from pathlib import Path

import duckdb

from runstream_service.store.schema import SCHEMA_VERSION, create_schema

ROOT = Path(__file__).parents[2]
V4_COMMIT = "13bdb78"  # the last commit with schema version 4


def _v4_schema() -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{V4_COMMIT}:service/runstream_service/store/schema.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("schema_v4")
    exec(compile(source, "schema_v4.py", "exec"), module.__dict__)
    assert module.SCHEMA_VERSION == 4
    return module


def test_a_version_4_file_migrates_and_keeps_its_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "runstream.duckdb")
    con = duckdb.connect(path)
    _v4_schema().create_schema(con)
    con.execute("INSERT INTO run_meta VALUES ('r1', 'p', 'n', '{}', 'running', 1.0, NULL, 'h', 1)")
    con.execute("INSERT INTO series VALUES (0, 'r1', 'scalar', 'loss')")
    con.execute("INSERT INTO scalar_points_hot VALUES (0, 1, 0, 1.0, 0.5)")
    con.close()

    con = duckdb.connect(path)
    create_schema(con)
    assert con.execute("SELECT version FROM schema_info").fetchall() == [(SCHEMA_VERSION,)]
    assert con.execute("SELECT run_id, name, tags, note, archived FROM runs").fetchall() == [("r1", "n", [], "", False)]
    assert con.execute("SELECT count(*) FROM scalars").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM run_deletions").fetchall() == [(0,)]
