"""Chaos: 8 writer processes stream 10M scalar points while the server is SIGKILLed and restarted 5 times.

Every writer is one rank of one run and logs 10 tags per step, paced over `--duration` seconds. The
server is killed with SIGKILL at random moments (no drain, no checkpoint; the next start replays
DuckDB's WAL) and restarted on the same data after a random pause. Writers keep logging through it:
while the server is away their batches go to the disk spool and are replayed when it is back. At the
end, SQL must count exactly the points logged, with no duplicate (run, tag, step, rank) and every
value as logged; the last line's JSON carries `lost` and `duplicated` (both must be 0).

    python bench/chaos.py [--points 10000000] [--writers 8] [--kills 5] [--duration 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _harness import Server, emit

TAGS = [f"m{i}" for i in range(10)]


def writer(args: argparse.Namespace) -> None:
    """One rank: log its share of the points, paced over `duration` seconds; print its SendReport."""
    import runstream

    steps = args.points // args.writers // len(TAGS)
    run = runstream.init(
        project="chaos",
        name="chaos",
        run_id=args.run_id,
        rank=args.writer,
        world_size=args.writers,
        server=args.server,
        dir=args.spool,
        connect_timeout=2.0,
    )
    rank_part = args.writer / 256
    chunk = 1000
    started = time.monotonic()
    for first in range(0, steps, chunk):
        for step in range(first, min(first + chunk, steps)):
            run.log({tag: step + i / 16 + rank_part for i, tag in enumerate(TAGS)}, step=step)
        ahead = started + args.duration * min(first + chunk, steps) / steps - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    report = run.finish(timeout=900)
    print(json.dumps({"rank": args.writer, "steps": steps, "complete": report.complete, "report": str(report)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--duration", type=float, default=40.0, help="seconds over which writers log")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--writer", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--server", default="", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", default="", help=argparse.SUPPRESS)
    parser.add_argument("--spool", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer is not None:
        writer(args)
        return

    rng = random.Random(args.seed)
    steps = args.points // args.writers // len(TAGS)
    expected = steps * len(TAGS) * args.writers
    run_id = f"chaos-{uuid.uuid4().hex[:8]}"
    spool = tempfile.mkdtemp(prefix="runstream-chaos-spool-")
    with Server() as server:
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--writer",
                    str(rank),
                    "--writers",
                    str(args.writers),
                    "--points",
                    str(args.points),
                    "--duration",
                    str(args.duration),
                    "--server",
                    server.address,
                    "--run-id",
                    run_id,
                    "--spool",
                    spool,
                ],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            for rank in range(args.writers)
        ]
        # Kill moments: random, spread over the writers' logging time.
        slots = sorted(rng.uniform(0.05, 0.95) * args.duration for _ in range(args.kills))
        kills: list[dict[str, float]] = []
        for at in slots:
            delay = started + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            server.kill()
            killed = time.monotonic() - started
            time.sleep(rng.uniform(0.2, 2.0))
            server.restart()
            kills.append({"killed_at": round(killed, 2), "back_at": round(time.monotonic() - started, 2)})
            print(f"kill {len(kills)}: SIGKILL at {killed:.1f}s, serving again at {kills[-1]['back_at']:.1f}s")
        reports = []
        for proc in procs:
            out, _ = proc.communicate(timeout=1800)
            lines = [line for line in out.splitlines() if line.startswith("{")]
            reports.append(json.loads(lines[-1]) if lines else {"complete": False, "exit": proc.returncode})
        elapsed = time.monotonic() - started
        server.stop()
        total, distinct = server.sql("SELECT count(*), count(DISTINCT (run_id, tag, step, rank)) FROM scalars")[0]
        wrong = server.sql(
            "SELECT count(*) FROM scalars WHERE value <> "
            "step + CAST(substr(tag, 2) AS DOUBLE) / 16 + CAST(rank AS DOUBLE) / 256"
        )[0][0]
        ranks = server.sql("SELECT count(DISTINCT rank) FROM scalars")[0][0]
    left = list(Path(spool).glob("*/*/*.seg"))
    incomplete = sum(not r.get("complete") for r in reports)
    print(
        f"{args.writers} writers, {expected} points, {len(kills)} SIGKILLs of the server: {total} rows, "
        f"{distinct} distinct (run, tag, step, rank), {wrong} wrong values, {ranks} ranks, "
        f"{incomplete} writers incomplete, {len(left)} spool segments left; {elapsed:.1f}s"
    )
    emit(
        "chaos_points_lost",
        expected - distinct,
        "points",
        lost=expected - distinct,
        duplicated=total - distinct,
        wrong_values=wrong,
        points=expected,
        rows=total,
        writers=args.writers,
        kills=len(kills),
        kill_times=kills,
        writers_incomplete=incomplete,
        seconds=elapsed,
    )


if __name__ == "__main__":
    main()
