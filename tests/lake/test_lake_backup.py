"""`runstream backup` of a lake server: its own file, with the views of a server's file (its `scalars` view
reads the lake, which a backup neither holds nor reaches). The backup opens without the lake, and a
server restored from it serves the runs and the other kinds' points that server took."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import duckdb
import numpy as np

import runstream
from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runstream_service", *args], capture_output=True, text=True, timeout=120
    )


def test_a_lake_servers_backup_opens_and_restores_without_the_lake(tmp_path: Path, lake_config: LakeConfig) -> None:
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path]
    with LocalServer(tmp_path / "a", args) as a:
        run = runstream.init(project="p", name="backed", run_id="backed", server=a.address)
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
        run.log_histogram("weights", np.arange(50.0), step=99)
        run.finish(timeout=30)
        done = cli("backup", str(tmp_path / "a.duckdb"), "--url", a.http_url)
        assert done.returncode == 0, done.stderr
    # the stopped server's own file, read without the lake: a clear error, not a bare catalog error
    refused = cli("sql", "SELECT count(*) FROM scalars", "--data", str(tmp_path / "a"))
    assert refused.returncode != 0 and "lake server's" in refused.stderr, refused.stderr
    refused = cli("export", str(tmp_path / "export"), "--data", str(tmp_path / "a"))
    assert refused.returncode != 0 and "lake server's" in refused.stderr, refused.stderr
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as con:  # no lake attached here
        assert con.execute("SELECT run_id, status FROM runs").fetchall() == [("backed", "finished")]
        assert con.execute("SELECT tag, count(*) FROM histograms GROUP BY tag").fetchall() == [("weights", 1)]
        con.execute("SELECT count(*) FROM scalars").fetchall()  # the file's own (none: they are in the lake)
    restored = cli("restore", str(tmp_path / "a.duckdb"), "--data", str(tmp_path / "restored"))
    assert restored.returncode == 0, restored.stderr
    with (
        LocalServer(tmp_path / "restored") as single,
        urllib.request.urlopen(f"{single.http_url}/api/histograms?run=backed&tag=weights", timeout=30) as reply,
    ):
        assert json.loads(reply.read())["histograms"][0]["count"] == 50
