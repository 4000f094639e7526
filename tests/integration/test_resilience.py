"""Breaking the server for real: acknowledged data survives, and the SDK's retries lose and double nothing."""

from __future__ import annotations

import signal
import threading
import time

import grpc
import numpy as np

import runstream
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import ServerProcess


def test_sdk_survives_a_killed_server_without_loss_or_duplicates(server: ServerProcess) -> None:
    """The server is SIGKILLed while the job logs, stays down while it logs, and comes back while it logs.

    The breaker thread and the logging loop hand over at fixed steps, so the overlap is certain, not
    left to timing: the kill comes after a third of the steps, the restart only after the loop logged
    more steps with the server dead, and the loop logs its last third only once the server is back."""
    steps, tags = 30_000, [f"t{i}" for i in range(10)]
    run = runstream.init(project="p", name="outage", server=server.address)
    first_pid = server.process.pid if server.process is not None else None
    logging_midway, killed, logged_while_down, restarted = (threading.Event() for _ in range(4))
    failures: list[BaseException] = []

    def outage() -> None:
        try:
            logging_midway.wait(60)
            server.kill()  # SIGKILL: no drain, DuckDB replays its WAL at the next start
            killed.set()
            logged_while_down.wait(60)
            server.start()
            restarted.set()
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    breaker = threading.Thread(target=outage)
    breaker.start()
    for step in range(steps):
        run.log({tag: step + i / 10 for i, tag in enumerate(tags)}, step=step)
        if step == steps // 3:
            logging_midway.set()
            assert killed.wait(60), f"the server was not killed while logging: {failures}"
            assert not server.running
        elif step == 2 * steps // 3:
            assert not server.running, "the server came back before the job logged during the outage"
            logged_while_down.set()
            assert restarted.wait(60), f"the server did not come back while logging: {failures}"
        if step % 1000 == 0:
            time.sleep(0.05)  # let the sender send (and, during the outage, retry) between bursts
    breaker.join()
    assert not failures, failures
    assert server.process is not None and server.process.pid != first_pid and server.running
    report = run.finish(timeout=60)
    assert report.complete, report
    server.stop()
    assert server.sql("SELECT count(*), count(DISTINCT (tag, step)) FROM scalars") == [(steps * 10, steps * 10)]
    assert server.sql("SELECT count(*) FROM scalars WHERE value <> step + CAST(tag[2:] AS INT) / 10") == [(0,)]


def _batch(run_id: str, writer: str, seq: int, points: int) -> pb.Batch:
    return pb.Batch(
        run_id=run_id,
        writer_id=writer,
        seq=seq,
        tags=["x"],
        scalars=pb.Scalars(
            tag_index=np.zeros(points, "<u4").tobytes(),
            step=(np.arange(points, dtype="<i8") + seq * points).tobytes(),
            wall_time=np.zeros(points, "<f8").tobytes(),
            value=np.full(points, float(seq), "<f8").tobytes(),
        ),
    )


def test_sigterm_commits_every_acknowledged_batch(server: ServerProcess) -> None:
    channel = grpc.insecure_channel(server.address)
    stub = pb_grpc.IngestStub(channel)
    run_id = stub.OpenRun(pb.OpenRunRequest(project="p", name="drain"), timeout=10).run_id
    acked: list[int] = []

    def requests() -> object:
        for seq in range(1, 10_000):
            yield _batch(run_id, "w", seq, 5_000)

    try:
        for ack in stub.Write(requests(), timeout=60):
            acked.append(ack.seq)
            if len(acked) == 5:  # mid-stream, with more batches on the way
                server.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    except grpc.RpcError as exc:
        assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), exc
    channel.close()
    assert server.process is not None and server.process.wait(60) == 0
    assert acked, "no batch was acknowledged before the shutdown"
    stored = {seq for (seq,) in server.sql("SELECT DISTINCT CAST(value AS BIGINT) FROM scalars")}
    assert set(acked) <= stored
    assert server.sql("SELECT count(*) FROM scalars")[0][0] == len(stored) * 5_000
