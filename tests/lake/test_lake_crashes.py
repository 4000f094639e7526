"""Crashed runs across lake servers: a writer SIGKILLed while its run is open becomes `crashed` in the lake
once no server has seen it for --crash-after seconds, and `running` again when it comes back elsewhere."""

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

WRITER = """
import sys, time, runstream
run = runstream.init(project="p", name="victim", run_id="victim", server=sys.argv[1])
for step in range(1000):
    run.log({"loss": float(step)}, step=step)
run.flush(timeout=30)
print("logged", flush=True)
time.sleep(600)
"""


def status(config: LakeConfig) -> object:
    return lake_query(config, "SELECT status FROM lake.runs WHERE run_id = 'victim'")


def wait_for_status(config: LakeConfig, want: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while (got := status(config)) != [(want,)] and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


@pytest.mark.slow
def test_a_killed_writer_is_crashed_in_the_lake_and_revived_on_another_server(
    tmp_path: Path, lake_config: LakeConfig
) -> None:
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path, "--crash-after", "3"]
    with LocalServer(tmp_path / "a", args) as a, LocalServer(tmp_path / "b", args) as b:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, a.address], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "logged"
            assert wait_for_status(lake_config, "running") == [("running",)]
            time.sleep(4)  # longer than --crash-after: the live stream keeps it running
            assert status(lake_config) == [("running",)]
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        assert wait_for_status(lake_config, "crashed") == [("crashed",)]
        run = runstream.init(project="p", name="victim", run_id="victim", server=b.address)  # back, elsewhere
        run.log({"loss": 0.5}, step=1000)
        assert run.flush(timeout=30)
        assert wait_for_status(lake_config, "running") == [("running",)]
        run.finish()
        assert wait_for_status(lake_config, "finished") == [("finished",)]
