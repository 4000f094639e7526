"""Two `runstream serve --lake` servers on one lake, a writer failing over when one is SIGKILLed.

The killed server had acknowledged batches it had not moved yet; once it restarts, its mover moves them,
and every step is in the lake exactly once. A separate DuckDB 1.5.5 process (a notebook) ATTACHes the
lake read-only while ingest runs and queries the documented views.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import lake_query

import runstream
from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig

STEPS = 40_000


def lake_server(data: Path, config: LakeConfig) -> LocalServer:
    return LocalServer(data, ["--lake", config.catalog, "--data-path", config.data_path])


def wait_for(config: LakeConfig, sql: str, want: object, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while (got := lake_query(config, sql)) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


@pytest.mark.slow
def test_writer_fails_over_and_nothing_is_lost_or_doubled(tmp_path: Path, lake_config: LakeConfig) -> None:
    a = lake_server(tmp_path / "a", lake_config).start()
    b = lake_server(tmp_path / "b", lake_config).start()
    try:
        run = runstream.init(project="p", name="failover", run_id="failover", server=f"{a.address},{b.address}")
        for step in range(STEPS):
            run.log({"loss": float(step)}, step=step)
            if step == STEPS // 4:
                # B learns the run from the lake: its row must be there (a limit: within ~1 s of OpenRun)
                assert run.flush(timeout=30)
                wait_for(lake_config, "SELECT count(*) FROM lake.runs WHERE run_id = 'failover'", [(1,)])
            if step == STEPS // 2:
                assert run.flush(timeout=30)  # acknowledged by A, not moved yet (it moves each second)
                a.stop(signal.SIGKILL)
        report = run.finish(timeout=60)
        assert report.unsent_points == 0 and report.rejected_batches == 0, report
        a.start()  # comes back and moves what it had acknowledged
        counted = wait_for(
            lake_config,
            "SELECT count(*), count(DISTINCT step), min(step), max(step) FROM lake.scalars WHERE run_id = 'failover'",
            [(STEPS, STEPS, 0, STEPS - 1)],
        )
        assert counted == [(STEPS, STEPS, 0, STEPS - 1)]
        assert lake_query(lake_config, "SELECT count(DISTINCT server) FROM lake.lake_batches") == [(2,)]
        # B moves the finish note after its last batch (a note written while a move ran is moved by the next)
        status = wait_for(lake_config, "SELECT status FROM lake.runs WHERE run_id = 'failover'", [("finished",)], 20)
        assert status == [("finished",)]
    finally:
        a.close()
        b.close()


NOTEBOOK = """
import sys, duckdb
sys.path.insert(0, {service!r})
from runstream_service.store import lake
con = duckdb.connect()
lake.attach(con, lake.LakeConfig({catalog!r}, {data_path!r}), read_only=True)
print(con.execute("SELECT count(*) FROM lake.scalars WHERE run_id = 'nb'").fetchall()[0][0])
print(con.execute("SELECT name, project FROM lake.runs WHERE run_id = 'nb'").fetchall())
"""


def test_a_separate_duckdb_client_reads_the_lake_while_ingest_runs(tmp_path: Path, lake_config: LakeConfig) -> None:
    with lake_server(tmp_path / "a", lake_config) as server:
        run = runstream.init(project="p", name="notebook", run_id="nb", server=server.address)
        for step in range(1000):
            run.log({"loss": float(step)}, step=step)
        assert run.flush(timeout=30)
        wait_for(lake_config, "SELECT count(*) FROM lake.scalars WHERE run_id = 'nb'", [(1000,)])
        service = str(Path(__file__).parents[2] / "service")
        code = NOTEBOOK.format(service=service, catalog=lake_config.catalog, data_path=lake_config.data_path)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.split("\n")[:2] == ["1000", "[('notebook', 'p')]"]
        run.finish()
