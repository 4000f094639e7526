"""TensorBoard compatibility: `SummaryWriter.add_scalar` cost and `import-tensorboard` read speed.

1. Caller's cost per `add_scalar` call: runstream.tensorboard.SummaryWriter (a live server, its sender
   thread running) vs tensorboardX.SummaryWriter (writing its event file), in the same process.
   Goal: ratio >= 20 (runstream <= 1.5 us; tensorboardX about 32 us).
2. Reading a 1M-scalar event file: runstream's importer (framing + CRC32C checks + parsing into
   columns, `read_run`) vs tensorboard's EventAccumulator (`Reload()`, keeping every point).
   Goal: <= 5 s and ratio >= 3. The full import into a server (read + send + commit) is reported too.

    python bench/tensorboard_compat.py [--calls 200000] [--tbx-calls 20000] [--points 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _harness import Server, emit, time_call


def bench_add_scalar(address: str, calls: int, repeat: int) -> float:
    from runstream.tensorboard import SummaryWriter

    writer = SummaryWriter("runs/bench", project="bench", server=address)
    add = writer.add_scalar
    offset = 0
    times = []

    def body() -> None:
        for step in range(offset, offset + calls):
            add("train/loss", 0.25, step)

    for _ in range(repeat):
        times.append(time_call(body) / calls)
        offset += calls
        writer.flush()  # untimed: every repetition starts with empty buffers
    writer.close()
    return statistics.median(times)


def bench_tbx_add_scalar(logdir: Path, calls: int) -> float:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(logdir=str(logdir))
    add = writer.add_scalar

    def body() -> None:
        for step in range(calls):
            add("train/loss", 0.25, step)

    seconds = time_call(body) / calls
    writer.close()
    return seconds


def bench_import(address: str, tmp: Path, points: int) -> dict[str, float]:
    from tensorboard.backend.event_processing import event_accumulator

    from runstream_service import tbimport

    run_dir = tmp / "logs" / "big"
    run_dir.mkdir(parents=True)
    event_file = run_dir / "events.out.tfevents.1700000000.bench"
    tbimport.write_scalar_events(event_file, points)
    start = time.perf_counter()
    data = tbimport.read_run("big", run_dir, [event_file])
    read_seconds = time.perf_counter() - start
    assert data.points == points, (data.points, data.problems)
    start = time.perf_counter()
    tbimport.import_tensorboard(tmp / "logs", "bench", address, progress=False, log=lambda _: None)
    import_seconds = time.perf_counter() - start
    start = time.perf_counter()
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    accumulator_seconds = time.perf_counter() - start
    assert sum(len(acc.Scalars(t)) for t in acc.Tags()["scalars"]) == points
    return {"read_s": read_seconds, "import_s": import_seconds, "event_accumulator_s": accumulator_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="add_scalar calls per repetition (runstream)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tbx-calls", type=int, default=20_000, help="add_scalar calls (tensorboardX)")
    parser.add_argument("--points", type=int, default=1_000_000, help="scalars in the event file to import")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runstream-tbbench-") as tmp_name, Server() as server:
        tmp = Path(tmp_name)
        ours = bench_add_scalar(server.address, args.calls, args.repeat)
        theirs = bench_tbx_add_scalar(tmp / "tbx", args.tbx_calls)
        print(f"add_scalar: runstream {ours * 1e6:.2f} us, tensorboardX {theirs * 1e6:.2f} us ({theirs / ours:.0f}x)")
        reads = bench_import(server.address, tmp, args.points)
        print(
            f"1M-scalar event file: runstream read {reads['read_s']:.2f} s (full import into the server "
            f"{reads['import_s']:.2f} s), EventAccumulator {reads['event_accumulator_s']:.2f} s "
            f"({reads['event_accumulator_s'] / reads['read_s']:.1f}x)"
        )
    emit(
        "tensorboard_compat",
        ours * 1e6,
        "us per add_scalar",
        ratio=theirs / ours,
        tensorboardx_add_scalar_us=theirs * 1e6,
        import_points=args.points,
        import_read_s=reads["read_s"],
        import_total_s=reads["import_s"],
        event_accumulator_s=reads["event_accumulator_s"],
        import_ratio=reads["event_accumulator_s"] / reads["read_s"],
        import_total_ratio=reads["event_accumulator_s"] / reads["import_s"],
    )


if __name__ == "__main__":
    main()
