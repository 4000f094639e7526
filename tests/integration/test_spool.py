"""The disk spool against a real server: offline runs and `runstream sync`, outages, SIGKILLed writers.

What is guaranteed: every batch that reached the spool (the sender writes a batch there, flushed to
the OS, as soon as the server is away, the run is offline, or memory is full) arrives exactly once,
through the running process, `runstream sync`, or the next run on the same RUNSTREAM_DIR. A process
killed with SIGKILL loses only what had not reached the spool yet: points still in its in-memory
buffers (up to ~0.5 s of logging) and batches in flight while the server was up.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

import runstream
from runstream._spool import find_spools
from support import ServerProcess

TAGS = ("loss", "acc", "lr")


def _log_steps(run: runstream.Run, start: int, stop: int) -> None:
    for step in range(start, stop):
        run.log({tag: step + i / 10 for i, tag in enumerate(TAGS)}, step=step)


def _assert_exact(server: ServerProcess, steps: int, run_id: str | None = None) -> None:
    where = f"WHERE run_id = '{run_id}'" if run_id else ""
    rows = server.sql(f"SELECT count(*), count(DISTINCT (run_id, tag, step, rank)) FROM scalars {where}")
    assert rows == [(steps * len(TAGS), steps * len(TAGS))]
    bad = server.sql(
        f"SELECT count(*) FROM scalars {where} {'AND' if where else 'WHERE'} "
        "value <> step + (CASE tag WHEN 'loss' THEN 0 WHEN 'acc' THEN 1 ELSE 2 END) / 10"
    )
    assert bad == [(0,)]


def _sync(directory: Path, server: ServerProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runstream_service", "sync", str(directory), "--server", server.address],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_offline_run_then_sync_twice_uploads_exactly_once(tmp_path: Path, server: ServerProcess) -> None:
    spool_dir = tmp_path / "offline"
    run = runstream.init(project="p", name="offline", config={"lr": 0.1}, mode="offline", dir=str(spool_dir))
    _log_steps(run, 0, 20_000)
    run.log_histogram("weights", np.arange(100.0), step=5)
    run.log_image("sample", np.zeros((4, 4), np.uint8), step=5)
    report = run.finish()
    assert report.spool_dir and report.lost_points == 0
    assert report.spooled_points == 20_000 * len(TAGS) + 2
    copy = tmp_path / "copy"
    shutil.copytree(spool_dir, copy)

    first = _sync(spool_dir, server)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 uploaded" in first.stdout and f"{20_000 * len(TAGS) + 2} points" in first.stdout
    assert find_spools(spool_dir) == []
    again = _sync(spool_dir, server)  # nothing left
    assert again.returncode == 0 and "0 spools" in again.stdout
    replay = _sync(copy, server)  # the same batches once more: acknowledged as duplicates, not written
    assert replay.returncode == 0 and "1 uploaded" in replay.stdout, replay.stdout

    server.stop()
    _assert_exact(server, 20_000, run.id)
    assert server.sql("SELECT name, status, json_extract(config, '$.lr')::DOUBLE FROM runs") == [
        ("offline", "finished", 0.1)
    ]
    assert server.sql("SELECT count(*) FROM histograms") == [(1,)]
    assert server.sql("SELECT count(*) FROM images") == [(1,)]


def test_server_killed_mid_run_everything_arrives_once(tmp_path: Path, server: ServerProcess) -> None:
    spool_dir = tmp_path / "spool"
    run = runstream.init(project="p", name="outage", server=server.address, dir=str(spool_dir))
    _log_steps(run, 0, 5_000)
    assert run.flush(30)
    server.kill()
    _log_steps(run, 5_000, 60_000)  # server away: batches go to the spool
    deadline = time.monotonic() + 10
    while not list(spool_dir.glob("*/*/*.seg")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(spool_dir.glob("*/*/*.seg")), "nothing was spooled while the server was down"
    server.start()
    _log_steps(run, 60_000, 70_000)
    report = run.finish(timeout=60)
    assert report.complete, report
    assert find_spools(spool_dir) == []  # acknowledged batches are removed, and then the spool itself
    server.stop()
    _assert_exact(server, 70_000)


def test_server_down_at_init_run_opens_when_it_comes_back(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")  # not started yet
    spool_dir = tmp_path / "spool"
    run = runstream.init(project="p", name="late", server=server.address, dir=str(spool_dir), connect_timeout=0.5)
    _log_steps(run, 0, 30_000)
    server.start()
    try:
        report = run.finish(timeout=60)
        assert report.complete, report
    finally:
        server.stop()
    _assert_exact(server, 30_000, run.id)
    assert server.sql("SELECT name, status FROM runs") == [("late", "finished")]


def test_logging_does_not_wait_for_a_dead_server(tmp_path: Path, server: ServerProcess) -> None:
    """Memory holds 10k points here; the server is down; 300k points are logged: the spool takes them."""
    run = runstream.init(project="p", server=server.address, dir=str(tmp_path / "spool"), max_buffered_points=10_000)
    server.kill()
    done = threading.Event()

    def train() -> None:
        _log_steps(run, 0, 100_000)
        done.set()

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    assert done.wait(60), "log() waited for the server"
    server.start()
    assert run.finish(timeout=60).complete
    server.stop()
    _assert_exact(server, 100_000)


CHILD = textwrap.dedent(
    """
    import sys, time
    import runstream
    server, spool_dir, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = runstream.init(project="p", name="killed", server=server, dir=spool_dir, connect_timeout=0.5)
    for step in range(steps):
        run.log({"loss": step + 0.0, "acc": step + 0.1, "lr": step + 0.2}, step=step)
    sender = run._sender
    while not (sender._buffers.empty() and sender.spool is not None and len(sender.spool) == sender._next_seq - 1):
        time.sleep(0.01)
    print(run.id, flush=True)
    time.sleep(600)
    """
)


def _killed_child(tmp_path: Path, server: ServerProcess, spool_dir: Path, steps: int) -> str:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.address, str(spool_dir), str(steps)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, "the child did not start"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    return run_id


def test_sigkilled_writer_then_sync_recovers_everything_spooled(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")  # down while the child logs: everything is spooled
    spool_dir = tmp_path / "spool"
    run_id = _killed_child(tmp_path, server, spool_dir, 50_000)
    (spool,) = find_spools(spool_dir)
    assert not (spool / "finish.json").exists()
    segment = sorted(spool.glob("*.seg"))[-1]
    with open(segment, "ab") as handle:  # as if it had died in the middle of one more write
        handle.write(b"\x10\x00\x00\x00torn")
    server.start()
    try:
        result = _sync(spool_dir, server)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 uploaded" in result.stdout and "bytes of torn or damaged tail cut off" in result.stdout
        assert find_spools(spool_dir) == []
    finally:
        server.stop()
    _assert_exact(server, 50_000, run_id)


def test_the_next_run_on_the_directory_replays_a_killed_one(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    spool_dir = tmp_path / "spool"
    killed_id = _killed_child(tmp_path, server, spool_dir, 20_000)
    server.start()
    try:
        run = runstream.init(project="p", name="next", server=server.address, dir=str(spool_dir))
        _log_steps(run, 0, 1_000)
        deadline = time.monotonic() + 60
        while find_spools(spool_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.finish().complete
        assert find_spools(spool_dir) == []
    finally:
        server.stop()
    _assert_exact(server, 20_000, killed_id)
    _assert_exact(server, 1_000, run.id)


def test_spool_budget_policy_drop_counts_what_it_drops(tmp_path: Path, server: ServerProcess) -> None:
    spool_dir = tmp_path / "spool"
    run = runstream.init(project="p", mode="offline", dir=str(spool_dir), spool_max_bytes=200_000, spool_policy="drop")
    _log_steps(run, 0, 100_000)
    report = run.finish()
    assert report.dropped_points > 0
    assert report.spooled_points + report.dropped_points == 100_000 * len(TAGS)
    result = _sync(spool_dir, server)
    assert result.returncode == 0, result.stdout
    server.stop()
    assert server.sql("SELECT count(*) FROM scalars") == [(report.spooled_points,)]


def test_spool_budget_policy_block_waits_and_loses_nothing(tmp_path: Path) -> None:
    """A full spool under "block": log() waits once memory is full too, and goes on when the server is back."""
    server = ServerProcess(tmp_path / "data")  # down
    run = runstream.init(
        project="p",
        server=server.address,
        dir=str(tmp_path / "spool"),
        connect_timeout=0.5,
        spool_max_bytes=100_000,
        max_buffered_points=30_000,
    )
    done = threading.Event()

    def train() -> None:
        _log_steps(run, 0, 100_000)
        done.set()

    thread = threading.Thread(target=train, daemon=True)
    thread.start()
    assert not done.wait(5), "log() should wait: spool and memory are both full"
    server.start()
    try:
        assert done.wait(60)
        assert run.finish(timeout=60).complete
    finally:
        server.stop()
    _assert_exact(server, 100_000, run.id)
