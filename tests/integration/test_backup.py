"""`runstream backup` while points stream in, `runstream restore`, and a server started on the restored copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

import runstream
from support import ServerProcess

TAGS = ("loss", "acc", "lr")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runstream_service", *args], capture_output=True, text=True, timeout=300
    )


def rows(path: Path, query: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_a_backup_taken_while_points_stream_in_holds_whole_batches_and_everything_acknowledged_before_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    run = runstream.init(project="p", name="streaming", server=server.address)
    for step in range(2_000):
        run.log({tag: float(step) for tag in TAGS}, step=step)
    run.flush()  # acknowledged: the backup must hold these steps
    acknowledged = 2_000
    stop = threading.Event()

    def keep_logging() -> None:
        step = acknowledged
        while not stop.is_set():
            run.log({tag: float(step) for tag in TAGS}, step=step)
            step += 1

    writer = threading.Thread(target=keep_logging)
    writer.start()
    try:
        done = cli("backup", str(tmp_path / "b.duckdb"), "--url", server.http_url)
    finally:
        stop.set()
        writer.join()
    assert done.returncode == 0, done.stderr
    run.finish()
    restored = rows(tmp_path / "b.duckdb", "SELECT step, count(*) FROM scalars GROUP BY step ORDER BY step")
    steps = [step for step, _ in restored]
    # Every acknowledged step, then a prefix of what followed: whole batches (every tag of a step), no gap.
    assert steps == list(range(len(steps))) and len(steps) >= acknowledged
    assert {count for _, count in restored} == {len(TAGS)}
    # What the copy says it holds (writer_progress) is in it, and it is not the live file: the server went on.
    (seq,) = rows(tmp_path / "b.duckdb", "SELECT max(seq) FROM writer_progress")[0]
    assert seq >= 1
    assert not (tmp_path / "data" / "backup-tmp").exists() or not any((tmp_path / "data" / "backup-tmp").iterdir())

    restore = cli("restore", str(tmp_path / "b.duckdb"), "--data", str(tmp_path / "restored"))
    assert restore.returncode == 0, restore.stderr
    with ServerProcess(tmp_path / "restored") as again:
        with urllib.request.urlopen(f"{again.http_url}/api/runs?project=p") as reply:
            found = json.load(reply)["runs"]
        assert [r["name"] for r in found] == ["streaming"]
        points = f"{again.http_url}/api/points?run={found[0]['run_id']}&tag=loss"
        with urllib.request.urlopen(points) as reply:
            assert json.load(reply)["step"] == steps
        # The restored server takes new points for the same run.
        with runstream.init(project="p", name="streaming", run_id=found[0]["run_id"], server=again.address) as more:
            more.log({"loss": 1.0}, step=len(steps))
        assert again.stop() == 0
    (count,) = rows(tmp_path / "restored" / "runstream.duckdb", "SELECT count(*) FROM scalars WHERE tag = 'loss'")[0]
    assert count == len(steps) + 1


def test_backup_of_a_stopped_servers_data_keeps_every_kind_and_restore_never_overwrites(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        with runstream.init(project="p", name="kinds", server=server.address) as run:
            run.log({"x": 1.0}, step=0)
            run.log_histogram("h", np.arange(100.0), step=0)
            run.log_image("img", np.zeros((4, 5, 3), np.uint8), step=0)
            run.log_text("t", "hello", step=0)
        assert server.stop() == 0
    done = cli("backup", str(tmp_path), "--data", str(tmp_path / "data"))  # a directory: a file named by the time
    assert done.returncode == 0, done.stderr
    (made,) = list(tmp_path.glob("runstream-*.duckdb"))
    query = (
        "SELECT (SELECT count(*) FROM scalars), (SELECT bucket_counts FROM histograms), "
        "(SELECT data FROM images), (SELECT text FROM texts)"
    )
    assert rows(made, query) == rows(tmp_path / "data" / "runstream.duckdb", query)

    refused = cli("restore", str(made), "--data", str(tmp_path / "data"))
    assert refused.returncode == 1 and "exists" in refused.stderr
    not_a_backup = tmp_path / "nope.duckdb"
    not_a_backup.write_bytes(b"not a database")
    refused = cli("restore", str(not_a_backup), "--data", str(tmp_path / "elsewhere"))
    assert refused.returncode == 1 and "runstream backup" in refused.stderr
    assert not (tmp_path / "elsewhere" / "runstream.duckdb").exists()


def test_backup_of_a_held_database_says_to_go_through_the_server(server: ServerProcess, tmp_path: Path) -> None:
    done = cli("backup", str(tmp_path / "b.duckdb"), "--data", str(server.data_dir))
    assert done.returncode == 1 and "--url" in done.stderr
    assert not (tmp_path / "b.duckdb").exists()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[ServerProcess]:
    tokens = tmp_path / "tokens"
    tokens.write_text("reader-token-0123456789 read\nadmin-token-0123456789 read,admin:*\n")
    process = ServerProcess(tmp_path / "data", ("--tokens", str(tokens))).start()
    yield process
    process.stop()


def test_a_read_token_cannot_take_a_backup(guarded: ServerProcess) -> None:
    request = urllib.request.Request(
        f"{guarded.http_url}/api/admin/backup",
        data=b"",
        method="POST",
        headers={"Authorization": "Bearer reader-token-0123456789"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    assert "admin" in json.load(refused.value)["error"]


def test_an_admin_token_takes_a_backup_through_the_cli(guarded: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "RUNSTREAM_TOKEN": "admin-token-0123456789"}
    command = [
        sys.executable,
        "-m",
        "runstream_service",
        "backup",
        str(tmp_path / "b.duckdb"),
        "--url",
        guarded.http_url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "b.duckdb", "SELECT count(*) FROM runs") == [(0,)]
    env["RUNSTREAM_TOKEN"] = "reader-token-0123456789"
    command[4] = str(tmp_path / "c.duckdb")
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode == 1 and "admin:*" in refused.stderr
    assert not (tmp_path / "c.duckdb").exists() and not (tmp_path / "c.duckdb.partial").exists()
