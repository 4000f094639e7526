"""POST /api/sql on a lake server (DuckDB 1.5.5): the read-only SQL of one server answers, JSON and Arrow,
and the lake's documented views are there under `lake.`."""

from __future__ import annotations

import time
from pathlib import Path

from lake_http import sql_rows

import runstream
from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig


def wait_for_rows(server: LocalServer, sql: str, want: list[list[object]]) -> list[list[object]]:
    deadline = time.monotonic() + 30
    while (found := sql_rows(server, sql)) != want and time.monotonic() < deadline:
        time.sleep(0.5)  # the mover moves about a second after the acknowledgement
    return found


def test_sql_on_a_lake_server_reads_its_file_and_the_lake(tmp_path: Path, lake_config: LakeConfig) -> None:
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path]
    with LocalServer(tmp_path / "a", args) as server:
        run = runstream.init(project="p", name="sql", run_id="sql", server=server.address)
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
        run.finish()
        url = f"http://127.0.0.1:{server.http_port}"
        local = runstream.query("SELECT count(*) AS n FROM scalars WHERE run_id = 'sql'", url=url)
        assert local.column("n").to_pylist() == [100]  # Arrow, from the server's file
        in_lake = "SELECT count(*) AS n, sum(value) AS total FROM lake.scalars WHERE run_id = 'sql'"
        assert wait_for_rows(server, in_lake, [[100, 4950.0]]) == [[100, 4950.0]]  # JSON, from the lake
        status = "SELECT status FROM lake.runs WHERE run_id = 'sql'"
        assert wait_for_rows(server, status, [["finished"]]) == [["finished"]]


def test_a_notebook_reads_the_lakes_snapshots_with_their_times(lake_config: LakeConfig) -> None:
    """`SELECT * FROM lake.snapshots()` in a notebook: its TIMESTAMP WITH TIME ZONE column reaches Python
    (DuckDB needs pytz for that; the lake extra brings it)."""
    import duckdb

    from runstream_service.store import lake

    con = duckdb.connect()
    try:
        lake.attach(con, lake_config)
        lake.create_schema(con)
        rows = con.execute(f"SELECT * FROM {lake.LAKE}.snapshots()").fetchall()
        assert rows and all(row[1].tzinfo is not None for row in rows)  # snapshot_time
    finally:
        con.close()
