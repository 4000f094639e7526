"""A backup of a large database taken while points stream in: how long it takes, how much ingest slows.

    python bench/backup.py [--points 100000000] [--rate 1000000] [--before 10] [--after 5]

1. `--points` scalar points (100 runs x points/100 steps of one tag) are logged through gRPC and
   compacted (bench/dataset.py).
2. Two writer processes stream new points into two live runs at `--rate` points/s in all, in
   batches of BATCH_POINTS, each batch's acknowledgement timed.
3. After `--before` seconds, `POST /api/admin/backup` (what `runstream backup --url` sends) takes the
   backup and downloads it; streaming goes on for `--after` seconds more.
4. The backup is restored into a new directory (`runstream restore`) and checked: the preloaded
   points are all there, and each live writer's points are exactly its batches up to the seq the
   copy's writer_progress records, which lies between the last batch acknowledged before the backup
   was asked for and the last acknowledged when it had arrived (no batch in part, nothing
   acknowledged before the snapshot missing).

The last line: `value` = seconds the backup took (request to file on disk), `ingest_drop` =
1 - (points acknowledged per second while it ran / in the `--before` seconds before it),
`exact` = the checks above, and the database and backup sizes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Server, emit, settle
from dataset import log_scalars

from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from runstream_service.backup import restore
from runstream_service.remote import CHUNK_BYTES, open_url

BATCH_POINTS = 20_000
WRITERS = 2
WINDOW = 32


def stream(address: str, run_id: str, rate: float, stop: Any, results: Any) -> None:
    """A writer process: `rate` points/s into `run_id` until `stop`; puts (run_id, (writer_id, [(seq, ack time)]))."""
    writer_id = uuid.uuid4().hex
    window = threading.Semaphore(WINDOW)
    acks: list[tuple[int, float]] = []
    interval = BATCH_POINTS / rate
    tag_index = np.zeros(BATCH_POINTS, "<u4").tobytes()

    def batches() -> Any:
        started = time.monotonic()
        seq = 0
        while not stop.is_set():
            wait = started + seq * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            while not window.acquire(timeout=0.5):
                if stop.is_set():
                    return
            steps = np.arange(seq * BATCH_POINTS, (seq + 1) * BATCH_POINTS, dtype=np.int64)
            seq += 1
            yield pb.Batch(
                run_id=run_id,
                writer_id=writer_id,
                seq=seq,
                tags=["live"],
                scalars=pb.Scalars(
                    tag_index=tag_index,
                    step=steps.tobytes(),
                    wall_time=np.full(BATCH_POINTS, time.time()).tobytes(),
                    value=np.sin(steps / 1000.0).tobytes(),
                ),
            )

    with grpc.insecure_channel(address) as channel:
        for ack in pb_grpc.IngestStub(channel).Write(batches(), wait_for_ready=True):
            acks.append((ack.seq, time.monotonic()))
            window.release()
    results.put((run_id, (writer_id, acks)))


def take_backup(url: str, dest: Path) -> tuple[float, float, float]:
    """(asked at, arrived at, server's snapshot seconds) of one backup downloaded to `dest`."""
    asked = time.monotonic()
    with open_url(url, "/api/admin/backup", method="POST") as reply, open(dest, "wb") as out:
        snapshot_seconds = float(reply.headers.get("X-Runstream-Snapshot-Seconds", "nan"))
        while chunk := reply.read(CHUNK_BYTES):
            out.write(chunk)
    return asked, time.monotonic(), snapshot_seconds


def rate_between(acks: list[list[tuple[int, float]]], start: float, end: float) -> float:
    count = sum(1 for writer in acks for _, at in writer if start <= at < end)
    return count * BATCH_POINTS / max(end - start, 1e-9)


def last_seq_before(acks: list[tuple[int, float]], moment: float) -> int:
    return max((seq for seq, at in acks if at < moment), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000_000, help="points in the database before the backup")
    parser.add_argument("--rate", type=float, default=1_000_000, help="points/s streamed during the backup")
    parser.add_argument("--before", type=float, default=10.0, help="seconds of streaming before the backup")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of streaming after it")
    args = parser.parse_args()

    with Server() as server, tempfile.TemporaryDirectory(prefix="runstream-backup-bench-") as scratch:
        runs = 100
        steps = max(1, args.points // runs)
        print(f"logging {runs * steps:,} points ...", file=sys.stderr, flush=True)
        loaded = log_scalars(server.address, runs=runs, tags=["loss"], steps=steps, project="bench")
        print(f"logged in {loaded.seconds:.0f} s; compacting ...", file=sys.stderr, flush=True)
        settle(server, timeout=3600)
        database_mb = server.database.stat().st_size / 1e6

        channel = grpc.insecure_channel(server.address)
        live = [f"live-{i}" for i in range(WRITERS)]
        for run_id in live:
            request = pb.OpenRunRequest(
                project="live", name=run_id, run_id=run_id, world_size=1, host="bench", start_time=time.time()
            )
            pb_grpc.IngestStub(channel).OpenRun(request, timeout=60)
        context = multiprocessing.get_context("spawn")
        stop, results = context.Event(), context.Queue()
        writers = [
            context.Process(target=stream, args=(server.address, run_id, args.rate / WRITERS, stop, results))
            for run_id in live
        ]
        for writer in writers:
            writer.start()
        streaming_since = time.monotonic()
        time.sleep(args.before)
        print("backing up ...", file=sys.stderr, flush=True)
        backup_file = Path(scratch) / "backup.duckdb"
        asked, arrived, snapshot_seconds = take_backup(server.http_url, backup_file)
        time.sleep(args.after)
        stop.set()
        outcome = dict(results.get(timeout=120) for _ in writers)
        for writer in writers:
            writer.join(60)
        channel.close()

        acks = [writer_acks for _, writer_acks in outcome.values()]
        before_rate = rate_between(acks, max(streaming_since + 1.0, asked - args.before), asked)
        during_rate = rate_between(acks, asked, arrived)
        restored = restore(backup_file, Path(scratch) / "restored")
        con = duckdb.connect(str(restored), read_only=True)
        try:
            (preloaded,) = con.execute("SELECT count(*) FROM scalars WHERE run_id LIKE 'bench-%'").fetchall()[0]
            exact = preloaded == runs * steps
            for run_id, (writer_id, writer_acks) in outcome.items():
                found = con.execute("SELECT seq FROM writer_progress WHERE writer_id = ?", [writer_id]).fetchall()
                seq = int(found[0][0]) if found else 0
                (points,) = con.execute("SELECT count(*) FROM scalars WHERE run_id = ?", [run_id]).fetchall()[0]
                lower, upper = last_seq_before(writer_acks, asked), last_seq_before(writer_acks, arrived)
                exact = exact and points == seq * BATCH_POINTS and lower <= seq <= upper
                print(
                    f"{run_id}: the copy holds {points:,} points = {seq} whole batches (acknowledged before the "
                    f"backup was asked for: {lower}, by its arrival: {upper})",
                    file=sys.stderr,
                )
        finally:
            con.close()
        emit(
            "backup_seconds",
            arrived - asked,
            "s",
            ingest_drop=1.0 - during_rate / before_rate if before_rate else float("nan"),
            ingest_before_points_per_s=before_rate,
            ingest_during_points_per_s=during_rate,
            snapshot_seconds=snapshot_seconds,
            database_mb=database_mb,
            backup_mb=backup_file.stat().st_size / 1e6,
            points=runs * steps,
            exact=exact,
        )


if __name__ == "__main__":
    main()
