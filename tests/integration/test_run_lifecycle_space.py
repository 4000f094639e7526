"""Space after deletes, against a live server: the blocks a delete frees are reused once the server has
checkpointed (it does after each delete), so re-ingesting as much again leaves the file about its size;
`runstream compact --data DIR` then gives the space back to the file system."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import numpy as np

from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import ServerProcess

POINTS = 1_000_000  # per run
BATCH = 100_000


def ingest(server: ServerProcess, run_id: str) -> None:
    rng = np.random.default_rng(len(run_id) + ord(run_id[0]))  # values that do not compress away

    def batches() -> list[pb.Batch]:
        return [
            pb.Batch(
                run_id=run_id,
                writer_id=f"w-{run_id}",
                seq=seq,
                tags=["loss"],
                scalars=pb.Scalars(
                    tag_index=np.zeros(BATCH, "<u4").tobytes(),
                    step=(np.arange(BATCH, dtype="<i8") + (seq - 1) * BATCH).tobytes(),
                    wall_time=(1.7e9 + np.arange(BATCH) * 1e-3).astype("<f8").tobytes(),
                    value=rng.random(BATCH).astype("<f8").tobytes(),
                ),
            )
            for seq in range(1, POINTS // BATCH + 1)
        ]

    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.IngestStub(channel)
        stub.OpenRun(pb.OpenRunRequest(run_id=run_id, project="p"), timeout=30)
        assert len(list(stub.Write(iter(batches()), timeout=300))) == POINTS // BATCH


def test_deleted_space_is_reused_then_compact_shrinks_the_file(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    database = server.data_dir / "runstream.duckdb"
    ingest(server, "a")
    ingest(server, "b")
    server.stop()
    two_runs = database.stat().st_size

    server.start()
    request = urllib.request.Request(f"{server.http_url}/api/runs/a", method="DELETE")
    with urllib.request.urlopen(request, timeout=120) as reply:
        assert reply.status == 200
    ingest(server, "c")
    server.stop()
    reused = database.stat().st_size
    assert reused < two_runs * 1.15, (two_runs, reused)  # not 1.5 times: a's blocks hold c's points
    assert server.sql("SELECT run_id, count(*) FROM scalars GROUP BY ALL ORDER BY 1") == [
        ("b", POINTS),
        ("c", POINTS),
    ]

    deleted = subprocess.run(
        [sys.executable, "-m", "runstream_service", "runs", "delete", "c", "--yes", "--data", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert deleted.returncode == 0, deleted.stderr
    compacted = subprocess.run(
        [sys.executable, "-m", "runstream_service", "compact", "--data", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert compacted.returncode == 0, compacted.stderr
    assert "MiB ->" in compacted.stdout
    assert database.stat().st_size < two_runs * 0.7, (two_runs, database.stat().st_size)
    assert server.sql("SELECT run_id, count(*) FROM scalars GROUP BY ALL") == [("b", POINTS)]
    server.start()  # the compacted file serves
    server.stop()
