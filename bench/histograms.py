"""Histograms: end-to-end histograms/s until committed, and the caller's cost of `log_histogram`.

End to end: one SDK process logs --count histograms (10 tags, 64 buckets) as fast as it can; the
clock runs from the first call until the server's /healthz reports them all committed. Two inputs,
each on a fresh server:
  raw    -- 1,000 float32 values per histogram (binned into 64 buckets by the SDK's sender thread)
  binned -- pre-binned (counts, edges) with 64 buckets
The headline is `binned`: 64-bucket histograms, as they cross the wire and are stored. `raw` adds
the SDK's binning of 1,000 values per histogram on the sender thread, and is an extra field.
After the server stops, `SELECT count(*) FROM histograms` must equal the count logged (else exit 1).

Caller's cost: median time of one `log_histogram(tag, values)` call, 1M float32 values and 10k
float32 values, with a live server (calls in groups of 10, flushed between groups, untimed);
baseline: tensorboardX `add_histogram` of the same arrays (its default bins, 'tensorflow').

    python bench/histograms.py [--count 100000] [--calls 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
from _harness import Server, emit

TAGS = [f"weights/layer_{i}" for i in range(10)]
BUCKETS = 64
POOL = 32


def end_to_end(count: int, mode: str) -> tuple[float, int, float]:
    """Histograms/s until committed, the stored count, and the seconds the caller spent logging."""
    import runstream

    rng = np.random.default_rng(1)
    if mode == "raw":
        pool: list[Any] = [rng.standard_normal(1000).astype(np.float32) for _ in range(POOL)]
    else:
        edges = np.linspace(-4.0, 4.0, BUCKETS + 1)
        pool = [(np.histogram(rng.standard_normal(1000), bins=edges)[0].astype(np.float64), edges) for _ in range(POOL)]
    steps = count // len(TAGS)
    with Server() as server:
        run = runstream.init(project="bench", name=f"histograms-{mode}", server=server.address)
        log_histogram = run.log_histogram
        t0 = time.monotonic()
        for step in range(steps):
            for i, tag in enumerate(TAGS):
                log_histogram(tag, pool[(step + i) % POOL], step=step, bins=BUCKETS)
        logged = time.monotonic() - t0
        t_end = server.wait_committed(steps * len(TAGS), timeout=1800)
        report = run.finish()
        if not report.complete:
            raise SystemExit(f"runstream could not send everything: {report}")
        server.stop()
        stored = int(server.sql("SELECT count(*) FROM histograms")[0][0])
        buckets = server.sql("SELECT min(len(bucket_counts)), max(len(bucket_counts)), sum(count) FROM histograms")[0]
        expected_total = steps * len(TAGS) * 1000
        if buckets[0] != BUCKETS or buckets[1] != BUCKETS or (mode == "raw" and int(buckets[2]) != expected_total):
            raise SystemExit(f"stored histograms look wrong: buckets min/max/total count {buckets}")
    return steps * len(TAGS) / (t_end - t0), stored, logged


def caller_cost_runstream(arrays: dict[str, np.ndarray], calls: int) -> dict[str, float]:
    import runstream

    result: dict[str, float] = {}
    with Server() as server:
        run = runstream.init(project="bench", name="histogram-caller", server=server.address)
        for name, values in arrays.items():
            times: list[float] = []
            step = 0
            for _ in range(3):  # warm-up
                run.log_histogram(f"warmup/{name}", values, step=step)
                step += 1
            run.flush(120)
            while len(times) < calls:
                for _ in range(min(10, calls - len(times))):
                    started = time.perf_counter()
                    run.log_histogram(f"caller/{name}", values, step=step)
                    times.append(time.perf_counter() - started)
                    step += 1
                run.flush(120)
            result[name] = statistics.median(times)
        run.finish()
    return result


def caller_cost_tensorboardx(arrays: dict[str, np.ndarray], calls: int) -> dict[str, float]:
    from tensorboardX import SummaryWriter

    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tbx-bench-") as logdir:
        writer = SummaryWriter(logdir)
        for name, values in arrays.items():
            for step in range(3):
                writer.add_histogram(f"warmup/{name}", values, step)
            times = []
            for step in range(calls):
                started = time.perf_counter()
                writer.add_histogram(f"caller/{name}", values, step)
                times.append(time.perf_counter() - started)
                if step % 10 == 9:
                    writer.flush()
            result[name] = statistics.median(times)
        writer.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="histograms logged end to end, per mode")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per array size for the caller's cost")
    args = parser.parse_args()
    count = max(len(TAGS), args.count // len(TAGS) * len(TAGS))

    raw_rate, raw_stored, raw_logged = end_to_end(count, "raw")
    binned_rate, binned_stored, binned_logged = end_to_end(count, "binned")
    print(
        f"end to end: raw {raw_rate:,.0f} hist/s (caller busy {raw_logged:.2f}s), "
        f"binned {binned_rate:,.0f} hist/s (caller busy {binned_logged:.2f}s)"
    )

    rng = np.random.default_rng(2)
    arrays = {
        "1m": rng.standard_normal(1_000_000).astype(np.float32),
        "10k": rng.standard_normal(10_000).astype(np.float32),
    }
    rs = caller_cost_runstream(arrays, args.calls)
    tbx = caller_cost_tensorboardx(arrays, args.calls)
    print(
        f"caller's cost: runstream 1M {rs['1m'] * 1e3:.3f} ms, 10k {rs['10k'] * 1e3:.4f} ms; "
        f"tensorboardX 1M {tbx['1m'] * 1e3:.3f} ms, 10k {tbx['10k'] * 1e3:.4f} ms"
    )

    count_ok = raw_stored == count and binned_stored == count
    goals = {
        "e2e": binned_rate >= 50_000,
        "caller_1m": rs["1m"] * 1e3 <= 8.0,
        "caller_10k": rs["10k"] * 1e3 <= 0.15,
    }
    emit(
        "histograms",
        binned_rate,
        "histograms/s",
        ratio=None,
        input="pre-binned (counts, edges), 64 buckets",
        raw_histograms_per_s=raw_rate,
        raw_input="1000 float32 values per histogram, binned by the SDK into 64 buckets",
        count=count,
        count_ok=count_ok,
        raw_caller_busy_s=raw_logged,
        binned_caller_busy_s=binned_logged,
        caller_ms_1m=rs["1m"] * 1e3,
        caller_ms_10k=rs["10k"] * 1e3,
        tensorboardx_ms_1m=tbx["1m"] * 1e3,
        tensorboardx_ms_10k=tbx["10k"] * 1e3,
        ratio_1m=tbx["1m"] / rs["1m"],
        ratio_10k=tbx["10k"] / rs["10k"],
        calls=args.calls,
        goals="e2e >= 50000 hist/s, caller <= 8 ms (1M), <= 0.15 ms (10k)",
        goals_met=goals,
        goal_met=all(goals.values()),
    )
    return 0 if count_ok else 1


if __name__ == "__main__":
    sys.exit(main())
