"""Reading through the HTTP API: M4 of one 1M-point series, and 20 runs x 100k points overlaid.

Data: one run logs 1M points of `loss`; then 20 runs log 100,000 points each of `loss`,
interleaved step by step as parallel runs arrive. Both through the SDK into a real server.
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
from _harness import Server, emit


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


def values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    series = np.exp(-np.arange(n) / (n / 5)) + 0.05 * rng.standard_normal(n)
    series[rng.integers(0, n)] += 10.0  # one spike; M4 must keep it
    return series


def log_data(server: Server, points: int, runs: int, per_run: int) -> tuple[str, list[str], float]:
    import runstream

    big = runstream.init(project="bench", name="one-long-run", server=server.address)
    for step, value in enumerate(values(points, 0).tolist()):
        big.log({"loss": value}, step=step)
    big.finish()
    many = [runstream.init(project="bench", name=f"parallel-{i}", server=server.address) for i in range(runs)]
    series = [values(per_run, i + 1).tolist() for i in range(runs)]
    for step in range(per_run):
        for run, ys in zip(many, series):
            run.log({"loss": ys[step]}, step=step)
    for run in many:
        run.finish()
    spike = float(values(points, 0).max())
    return big.id, [run.id for run in many], spike


def write_event_file(logdir: Path, points: int) -> Path:
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.record_writer import RecordWriter

    path = logdir / f"events.out.tfevents.{int(time.time())}.bench"
    writer = RecordWriter(str(path))
    writer.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
    start = time.time()
    for step, value in enumerate(values(points, 0).tolist()):
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
        big, many, spike = log_data(server, args.points, args.runs, args.per_run)
        base = f"http://127.0.0.1:{server.http_port}/api/scalars?tag=loss&width=1000"
        one_s, one = timed_get(f"{base}&runs={big}", args.repeat)
        many_s, overlay = timed_get(f"{base}&runs={','.join(many)}", args.repeat)
        zoom_s, _ = timed_get(
            f"{base}&runs={big}&x_min={args.points // 3}&x_max={args.points // 3 + 50_000}", args.repeat
        )
    series = one["series"][0]  # type: ignore[index]
    spike_kept = max(y for y in series["y"] if y is not None) == spike  # type: ignore[index]
    overlay_ok = len(overlay["series"]) == args.runs  # type: ignore[arg-type]
    print(f"M4 1M points -> 1000 px: {one_s * 1e3:.1f} ms ({len(series['x'])} points, spike kept: {spike_kept})")  # type: ignore[index]
    print(f"{args.runs} runs x {args.per_run} points: {many_s * 1e3:.1f} ms; zoom to 50k steps: {zoom_s * 1e3:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        write_event_file(Path(tmp), args.points)
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
