"""Overload: 32 clients flood a deliberately slowed writer; the server's memory stays bounded.

The server runs with a testing knob that makes its writer thread spend --slow-us extra microseconds per
point (an artificially slow disk), so 32 SDK processes logging as fast as they can produce far more than
it commits. Backpressure (a bounded writer queue, then gRPC flow control, then the SDK's spool) must keep
the server's memory bounded: peak RSS (VmHWM) <= 1 GiB. Afterwards SQL must count every point logged,
once: nothing acknowledged (or logged) is lost.

    python bench/overload.py [--clients 32] [--points 200000] [--slow-us 1.0]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path

from _harness import Server, emit

BOUND_MIB = 1024


def flood(address: str, index: int, points: int, spool: str) -> None:
    import os

    os.environ["RUNSTREAM_DIR"] = spool
    import runstream

    run = runstream.init(project="overload", name=f"client-{index:02d}", server=address)
    tags = [f"t{i}" for i in range(10)]
    for step in range(points // len(tags)):
        run.log({tag: step + i / 10 for i, tag in enumerate(tags)}, step=step)
    report = run.finish(timeout=900)
    if not report.complete:
        raise SystemExit(f"client {index}: {report}")


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--points", type=int, default=200_000, help="points per client")
    parser.add_argument("--slow-us", type=float, default=1.0, help="extra writer microseconds per point")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as spool,
        Server(extra_args=("--test-slow-writer-us", str(args.slow_us))) as server,
    ):
        assert server.process is not None
        pid = server.process.pid
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(memory_kib(pid, "VmRSS"))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        ctx = multiprocessing.get_context("spawn")
        clients = [ctx.Process(target=flood, args=(server.address, i, args.points, spool)) for i in range(args.clients)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.monotonic() - started
        peak_mib = memory_kib(pid, "VmHWM") / 1024
        done.set()
        failed = sum(1 for client in clients if client.exitcode != 0)
        server.stop()
        expected = args.clients * (args.points // 10) * 10
        ((count, distinct),) = server.sql("SELECT count(*), count(DISTINCT (run_id, tag, step, rank)) FROM scalars")
    print(
        f"{args.clients} clients x {args.points:,} points into a writer slowed by {args.slow_us} us/point: "
        f"{elapsed:.1f}s; server peak RSS {peak_mib:.0f} MiB (bound {BOUND_MIB}); stored {count:,} of {expected:,}"
    )
    emit(
        "overload",
        peak_mib,
        "MiB",
        bound_mib=BOUND_MIB,
        clients=args.clients,
        points=expected,
        stored=count,
        lost=expected - distinct,
        duplicated=count - distinct,
        failed_clients=failed,
        seconds=elapsed,
        rss_samples_max_mib=max(samples, default=0) / 1024,
        goal_met=peak_mib <= BOUND_MIB and count == expected == distinct and failed == 0,
    )
    return 0 if count == expected == distinct and failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
