"""Caller's cost per scalar point: `Run.log` (10 tags per call) vs tensorboardX `add_scalar`.

A live server runs, so the SDK's sender thread really encodes and sends while the caller logs
(and competes with it for the GIL, as in a training job). Each repetition logs `--steps` calls;
between repetitions the run is flushed (untimed) so every repetition starts with empty buffers.
If `runstream.tensorboard` exists, its `SummaryWriter.add_scalar` is timed too (goal <= 1.5 us).

    python bench/sdk_overhead.py [--steps 100000] [--repeat 5] [--tbx-calls 20000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time

from _harness import Server, emit, time_call

TAGS = [f"train/metric_{i}" for i in range(10)]
POOL = 64  # distinct dicts cycled through, so values change from call to call


def make_rows() -> list[dict[str, float]]:
    return [{tag: float(j * 10 + i) * 0.001 for i, tag in enumerate(TAGS)} for j in range(POOL)]


def loop_overhead(steps: int, rows: list[dict[str, float]]) -> float:
    """The benchmark loop with a no-op in place of `log`, in seconds."""

    def noop(data: dict[str, float], step: int) -> None:
        return None

    def body() -> None:
        for step in range(steps):
            noop(rows[step % POOL], step=step)

    return statistics.median(time_call(body) for _ in range(5))


def bench_runstream(
    address: str, steps: int, repeat: int, profile: bool
) -> tuple[list[float], float, cProfile.Profile | None]:
    import runstream

    rows = make_rows()
    run = runstream.init(project="bench", name="sdk_overhead", server=address)
    log = run.log
    offset = 0
    times: list[float] = []
    flush_seconds: list[float] = []

    def body() -> None:
        for step in range(offset, offset + steps):
            log(rows[step % POOL], step=step)

    # Warm-up: a short burst so tags are learned and the stream is open.
    for step in range(1000):
        log(rows[step % POOL], step=step)
    run.flush(60)
    offset = 1000
    for _ in range(repeat):
        times.append(time_call(body))
        offset += steps
        started = time.perf_counter()
        if not run.flush(120):
            raise SystemExit("flush timed out")
        flush_seconds.append(time.perf_counter() - started)
    profiler = None
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        body()
        profiler.disable()
        offset += steps
        run.flush(120)
    report = run.finish()
    if not report.complete:
        raise SystemExit(f"runstream could not send everything: {report}")
    return times, statistics.median(flush_seconds), profiler


def bench_tensorboardx(calls: int, repeat: int) -> list[float]:
    from tensorboardX import SummaryWriter

    steps = max(1, calls // len(TAGS))
    rows = make_rows()
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tbx-bench-") as logdir:
        writer = SummaryWriter(logdir)
        add_scalar = writer.add_scalar
        offset = 0

        def body() -> None:
            for step in range(offset, offset + steps):
                for tag, value in rows[step % POOL].items():
                    add_scalar(tag, value, step)

        body()  # warm-up
        offset += steps
        for _ in range(repeat):
            times.append(time_call(body))
            offset += steps
            writer.flush()
        writer.close()
    return [t / (steps * len(TAGS)) for t in times]


def bench_runstream_add_scalar(address: str, calls: int, repeat: int) -> float | str:
    """us per point of runstream.tensorboard.SummaryWriter.add_scalar, or why it could not be measured."""
    os.environ["RUNSTREAM_SERVER"] = address
    try:
        from runstream.tensorboard import SummaryWriter  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        return f"not measured: {exc}"
    steps = max(1, calls // len(TAGS))
    rows = make_rows()
    with tempfile.TemporaryDirectory(prefix="rs-tb-bench-") as logdir:
        writer = SummaryWriter(logdir)
        offset = 0

        def body() -> None:
            for step in range(offset, offset + steps):
                for tag, value in rows[step % POOL].items():
                    writer.add_scalar(tag, value, step)

        body()
        times = []
        for _ in range(repeat):
            offset += steps
            times.append(time_call(body))
        writer.close()
    return statistics.median(times) / (steps * len(TAGS)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000, help="Run.log calls per repetition (10 points each)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tbx-calls", type=int, default=20_000, help="add_scalar calls per repetition")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra repetition; top functions to stderr")
    args = parser.parse_args()
    points = args.steps * len(TAGS)

    with Server() as server:
        rs_times, flush_median, profiler = bench_runstream(server.address, args.steps, args.repeat, args.profile)
        shim_us = bench_runstream_add_scalar(server.address, args.steps, args.repeat)
    rs_us = statistics.median(rs_times) / points * 1e6
    loop_us = loop_overhead(args.steps, make_rows()) / points * 1e6
    tbx_us = statistics.median(bench_tensorboardx(args.tbx_calls, args.repeat)) * 1e6

    if profiler is not None:
        print(f"--- cProfile of one repetition ({args.steps} Run.log calls) ---", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    print(f"Run.log per point: {[round(t / points * 1e6, 4) for t in rs_times]} us; tensorboardX: {tbx_us:.2f} us")
    emit(
        "sdk_overhead",
        rs_us,
        "us/point",
        ratio=tbx_us / rs_us,
        runstream_us_per_call=rs_us * len(TAGS),
        runstream_us_min=min(rs_times) / points * 1e6,
        runstream_us_max=max(rs_times) / points * 1e6,
        loop_overhead_us_per_point=loop_us,
        runstream_us_minus_loop=rs_us - loop_us,
        tensorboardx_us=tbx_us,
        runstream_add_scalar_us=shim_us,
        goal_add_scalar_us=1.5,
        flush_after_rep_s=flush_median,
        points_per_rep=points,
        repeat=args.repeat,
        tbx_calls=args.tbx_calls,
        goal_us=0.5,
        goal_ratio=60,
        goal_met=rs_us <= 0.5 and tbx_us / rs_us >= 60,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
