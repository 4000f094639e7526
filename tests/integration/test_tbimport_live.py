"""`runstream import-tensorboard --follow` against a real server while tensorboardX writes: growth and new
runs are picked up, a follower killed with SIGKILL and started again stores every point exactly once, and
Ctrl-C finishes the followed runs. Waits are for a condition (with a generous deadline), never timings."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runstream_service import tbimport
from runstream_service.sql import query_url
from support import ServerProcess

tensorboardX = pytest.importorskip("tensorboardX")

WALL0 = 1_700_000_000.0
DEADLINE = 120.0
# tensorboardX's flush() does not drain its queue: what its worker thread takes afterwards reaches the file
# at its next timed flush. A short period makes the file catch up soon, as a job's does every flush_secs.
FLUSH_SECS = 0.2


def start_follower(logdir: Path, server: ServerProcess) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "runstream_service", "import-tensorboard", str(logdir), "--follow"]
    return subprocess.Popen(
        [*command, "--server", server.address, "--project", "live", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def followers() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def query(server: ServerProcess, sql: str) -> list[Any]:
    _, rows = query_url(server.http_url, sql)
    return [tuple(row) for row in rows]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"waited {DEADLINE:g} s for {what}"
        time.sleep(0.1)


def scalar_counts(server: ServerProcess) -> dict[str, int]:
    rows = query(server, "SELECT r.name, count(*) FROM scalars s JOIN runs r USING (run_id) GROUP BY r.name")
    return {name: count for name, count in rows}


def log_steps(writer: Any, steps: range) -> None:
    for step in steps:
        writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=WALL0 + step)
        if step % 10 == 0:
            writer.add_histogram("w", [step, step + 1.0, step + 2.0], step, walltime=WALL0 + step)
    writer.flush()


def wait_written(writer: Any, points: int) -> None:
    """Until the writer's event file holds `points` points (see FLUSH_SECS)."""
    directory = Path(writer.logdir)
    files = sorted(directory.glob("*tfevents*"))
    wait_for(lambda: tbimport.read_run("", directory, files).points == points, f"{points} points in the file")


def test_follow_picks_up_growth_and_a_restart_is_exact(
    tmp_path: Path, server: ServerProcess, followers: list[subprocess.Popen[str]]
) -> None:
    logdir = tmp_path / "logs"
    first = tensorboardX.SummaryWriter(logdir=str(logdir / "a"), flush_secs=FLUSH_SECS)
    log_steps(first, range(50))
    followers.append(start_follower(logdir, server))
    wait_for(lambda: scalar_counts(server) == {"a": 50}, "the first 50 points")
    assert query(server, "SELECT name, status FROM runs") == [("a", "running")]

    log_steps(first, range(50, 120))  # the file grows
    second = tensorboardX.SummaryWriter(logdir=str(logdir / "b"), flush_secs=FLUSH_SECS)  # a new run appears
    log_steps(second, range(30))
    wait_for(lambda: scalar_counts(server) == {"a": 120, "b": 30}, "the grown file and the new run")

    followers[0].send_signal(signal.SIGKILL)  # killed: no chance to finish anything
    followers[0].wait(timeout=30)
    log_steps(first, range(120, 200))
    log_steps(second, range(30, 60))
    followers.append(start_follower(logdir, server))
    wait_for(lambda: scalar_counts(server) == {"a": 200, "b": 60}, "what was written while no follower ran")
    log_steps(first, range(200, 230))  # and while the restarted one follows
    wait_for(lambda: scalar_counts(server) == {"a": 230, "b": 60}, "the last points")

    followers[1].send_signal(signal.SIGINT)  # Ctrl-C
    output, _ = followers[1].communicate(timeout=60)
    assert followers[1].returncode == 0, output
    assert "stopped" in output
    first.close()
    second.close()
    server.stop()
    assert server.sql("SELECT name, status FROM runs ORDER BY name") == [("a", "finished"), ("b", "finished")]
    # Exact: every (run, tag, step) once, and as many as were logged.
    duplicates = server.sql("SELECT count(*) - count(DISTINCT (run_id, tag, step)) FROM scalars")
    assert duplicates == [(0,)]
    stored = server.sql("SELECT r.name, count(*) FROM histograms h JOIN runs r USING (run_id) GROUP BY 1 ORDER BY 1")
    assert stored == [("a", 23), ("b", 6)]
    (end_time,) = server.sql("SELECT epoch(finished_at) FROM runs WHERE name = 'a'")[0]
    assert end_time == WALL0 + 229  # the wall time of the last event read


def test_a_grown_file_is_imported_from_where_the_last_import_stopped(tmp_path: Path, server: ServerProcess) -> None:
    logdir = tmp_path / "logs"
    writer = tensorboardX.SummaryWriter(logdir=str(logdir / "live"), flush_secs=FLUSH_SECS)
    log_steps(writer, range(10))
    wait_written(writer, 11)
    command = [sys.executable, "-m", "runstream_service", "import-tensorboard", str(logdir), "--server", server.address]
    for _ in range(2):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr + result.stdout
    assert "already imported" in result.stdout
    log_steps(writer, range(10, 25))
    wait_written(writer, 28)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert "imported as run" in result.stdout and ": 17 points" in result.stdout, (
        result.stdout
    )  # 15 scalars, 2 histograms
    writer.close()
    server.stop()
    assert server.sql("SELECT count(*), count(DISTINCT step) FROM scalars") == [(25, 25)]
    assert server.sql("SELECT status FROM runs") == [("finished",)]
