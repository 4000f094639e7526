"""Reading through the HTTP API: M4 of one 1M-point series, and 20 runs x 100k points overlaid.

Data: one run logs 1M points of `loss`; then 20 runs log 100,000 points each of `loss`,
interleaved as parallel runs arrive. Both sent over gRPC as SDK clients send them (bench/dataset.py),
into a real server, left to compact them first; each series has known spikes, which M4 must keep.
Timings: GET /api/scalars?...&width=1000, warm, median of --repeat. Baseline in the same run:
TensorBoard's way, EventAccumulator reading one tag of a 1M-point event file (written here
record by record with tensorboardX's record writer), as TensorBoard's server does (it keeps
1,000 random samples per tag, so spikes may be lost).

    python bench/query.py [--points 1000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from _harness import Server, emit, settle
from dataset import ScalarDataset, log_scalars, log_series


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return dict(json.load(reply))


def timed_get(url: str, repeat: int) -> tuple[float, dict[str, object]]:
    get_json(url)  # warm
    times, body = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        body = get_json(url)
        times.append(time.perf_counter() - start)
    return statistics.median(times), body


def log_data(server: Server, points: int, runs: int, per_run: int) -> tuple[ScalarDataset, ScalarDataset]:
    """One long run (run index 0 of the generator), then `runs` parallel runs (indexes 1..runs)."""
    big = log_series(server.address, points, project="bench", name="one-long-run", tag="loss")
    many = log_scalars(server.address, runs, ["loss"], per_run, project="bench", run_prefix="parallel-", first_run=1)
    return big, many


def write_event_file(logdir: Path, values: np.ndarray) -> Path:
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.record_writer import RecordWriter

    path = logdir / f"events.out.tfevents.{int(time.time())}.bench"
    writer = RecordWriter(str(path))
    writer.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
    start = time.time()
    for step, value in enumerate(values.tolist()):
        event = Event(
            wall_time=start + step * 1e-3,
            step=step,
            summary=Summary(value=[Summary.Value(tag="loss", simple_value=value)]),
        )
        writer.write(event.SerializeToString())
    writer.close()
    return path


def tensorboard_read_seconds(logdir: Path) -> tuple[float, int]:
    from tensorboard.backend.event_processing import event_accumulator

    start = time.perf_counter()
    accumulator = event_accumulator.EventAccumulator(str(logdir), size_guidance={event_accumulator.SCALARS: 1000})
    accumulator.Reload()
    kept = accumulator.Scalars("loss")
    return time.perf_counter() - start, len(kept)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--per-run", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with Server() as server:
        big, many = log_data(server, args.points, args.runs, args.per_run)
        settle(server, 900)  # reads of compacted points, as a server answers them once settled
        spike = big.extremes(0)[1]
        base = f"http://127.0.0.1:{server.http_port}/api/scalars?tag=loss&width=1000"
        one_s, one = timed_get(f"{base}&runs={big.run_ids[0]}", args.repeat)
        many_s, overlay = timed_get(f"{base}&runs={','.join(many.run_ids)}", args.repeat)
        zoom_s, _ = timed_get(
            f"{base}&runs={big.run_ids[0]}&x_min={args.points // 3}&x_max={args.points // 3 + 50_000}", args.repeat
        )
    series = one["series"][0]  # type: ignore[index]
    spike_kept = max(y for y in series["y"] if y is not None) == spike  # type: ignore[index]
    overlay_ok = len(overlay["series"]) == args.runs  # type: ignore[arg-type]
    print(f"M4 1M points -> 1000 px: {one_s * 1e3:.1f} ms ({len(series['x'])} points, spike kept: {spike_kept})")  # type: ignore[index]
    print(f"{args.runs} runs x {args.per_run} points: {many_s * 1e3:.1f} ms; zoom to 50k steps: {zoom_s * 1e3:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        write_event_file(Path(tmp), big.values(0))
        tb_s, tb_kept = tensorboard_read_seconds(Path(tmp))
    print(f"TensorBoard EventAccumulator, one tag of {args.points} points: {tb_s:.2f} s, {tb_kept} samples kept")
    emit(
        "query",
        one_s * 1e3,
        "ms",
        ratio=tb_s / one_s,
        overlay_ms=many_s * 1e3,
        overlay_runs=args.runs,
        overlay_points_per_run=args.per_run,
        zoom_ms=zoom_s * 1e3,
        tensorboard_s=tb_s,
        tensorboard_samples_kept=tb_kept,
        spike_kept=spike_kept,
        overlay_ok=overlay_ok,
        points=args.points,
        goal_ms=25,
        goal_overlay_ms=100,
        goal_met=one_s * 1e3 <= 25 and many_s * 1e3 <= 100 and spike_kept,
    )
    return 0 if spike_kept and overlay_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
