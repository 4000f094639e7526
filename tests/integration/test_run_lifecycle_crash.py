"""Crashed runs against live servers: a run with no open stream and no write for --crash-after becomes
`crashed`; an open idle stream keeps it alive; a writer coming back, or `runstream sync` of a killed
run's spool, makes it `running` again; after a restart the clock starts over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import ServerProcess

CRASH_AFTER = "2"


def batch(run_id: str, writer: str, seq: int, points: int) -> pb.Batch:
    return pb.Batch(
        run_id=run_id,
        writer_id=writer,
        seq=seq,
        tags=["x"],
        scalars=pb.Scalars(
            tag_index=np.zeros(points, "<u4").tobytes(),
            step=(np.arange(points, dtype="<i8") + seq * points).tobytes(),
            wall_time=np.full(points, 1.7e9, "<f8").tobytes(),
            value=np.ones(points, "<f8").tobytes(),
        ),
    )


def status(server: ServerProcess, run_id: str) -> str:
    with urllib.request.urlopen(f"{server.http_url}/api/runs", timeout=30) as reply:
        runs = json.load(reply)["runs"]
    (found,) = [r["status"] for r in runs if r["run_id"] == run_id]
    return str(found)


def wait_for(server: ServerProcess, run_id: str, wanted: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := status(server, run_id)) != wanted:
        assert time.monotonic() < deadline, f"{run_id} stayed {now}, expected {wanted}"
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, pb_grpc.IngestStub]]:
    server = ServerProcess(tmp_path / "data", ("--crash-after", CRASH_AFTER)).start()
    channel = grpc.insecure_channel(server.address)
    yield server, pb_grpc.IngestStub(channel)
    channel.close()
    if server.process is not None and server.process.poll() is None:
        server.stop()


def test_abandoned_run_crashes_and_comes_back(served: tuple[ServerProcess, pb_grpc.IngestStub]) -> None:
    server, stub = served
    stub.OpenRun(pb.OpenRunRequest(run_id="abandoned", project="A"), timeout=20)
    list(stub.Write(iter([batch("abandoned", "w1", 1, 10)]), timeout=20))
    # a second run keeps a stream open without sending anything more: alive
    release = threading.Event()

    def idle() -> Iterator[pb.Batch]:
        yield batch("idle", "w2", 1, 10)
        release.wait(60)

    stub.OpenRun(pb.OpenRunRequest(run_id="idle", project="A"), timeout=20)
    stream = stub.Write(idle(), timeout=120)
    next(stream)  # its batch is acknowledged; the stream stays open
    wait_for(server, "abandoned", "crashed")
    time.sleep(float(CRASH_AFTER) + 1)
    assert status(server, "idle") == "running"
    release.set()
    list(stream)

    list(stub.Write(iter([batch("abandoned", "w1", 2, 10)]), timeout=20))  # its writer is back
    wait_for(server, "abandoned", "running", timeout=float(CRASH_AFTER) - 0.5)
    server.stop()
    assert server.sql("SELECT count(*) FROM scalars WHERE run_id = 'abandoned'") == [(20,)]


CHILD = textwrap.dedent(
    """
    import sys, time
    import runstream
    run_id, spool_dir = sys.argv[1], sys.argv[2]
    run = runstream.init(project="A", run_id=run_id, mode="offline", dir=spool_dir)
    for step in range(1000):
        run.log({"loss": float(step)}, step=step)
    sender = run._sender
    while not (sender._buffers.empty() and sender.spool is not None and len(sender.spool) == sender._next_seq - 1):
        time.sleep(0.01)
    print("spooled", flush=True)
    time.sleep(600)
    """
)


def test_sync_of_a_killed_runs_spool_revives_it(
    served: tuple[ServerProcess, pb_grpc.IngestStub], tmp_path: Path
) -> None:
    server, stub = served
    stub.OpenRun(pb.OpenRunRequest(run_id="killed", project="A"), timeout=20)
    wait_for(server, "killed", "crashed")
    spool = tmp_path / "spool"
    child = subprocess.Popen([sys.executable, "-c", CHILD, "killed", str(spool)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "spooled"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    synced = subprocess.run(
        [sys.executable, "-m", "runstream_service", "sync", str(spool), "--server", server.address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    # no finish in a killed run's spool: running, until --crash-after passes again without a writer
    assert status(server, "killed") == "running"
    wait_for(server, "killed", "crashed")


def test_the_clock_starts_at_the_servers_start(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", ("--crash-after", "60")).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            pb_grpc.IngestStub(channel).OpenRun(pb.OpenRunRequest(run_id="left", project="A"), timeout=20)
        server.stop()
        time.sleep(1)
        server.start()  # a minute has not passed since this start: still running, whatever the outage
        assert status(server, "left") == "running"
    finally:
        server.stop()


def test_crash_after_must_be_positive(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runstream_service", "serve", "--data", str(tmp_path), "--crash-after", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 2 and "--crash-after" in result.stderr
