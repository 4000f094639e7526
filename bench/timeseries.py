"""Reading a big time-series database through the HTTP API (README "Benchmarks": bench/timeseries.py).

Data (bench/dataset.py, through the real gRPC ingest path, interleaved across runs as parallel
jobs send it): --runs x --steps points of one tag (100 x 1M = 100M points), one more run with one
--long-steps series (10M), one with a --read-points series (100k), and one run with --histograms
histograms of 64 buckets (10k), all in one server. A second server, with its own data directory,
holds only a copy of run 0's series: the same request there shows what the other 100M points cost.
Before measuring, each server is left to compact: /healthz is polled until "uncompacted_points" is
0 (skipped when the server does not report it).

Figures, each the median of --repeat warm requests on loopback, timed from sending the request to
the last byte of the body (parsing the JSON in Python is left out: a browser parses it natively):
  overlay_100x1m_ms (the value)  /api/scalars, all runs, width 1000                  goal <= 150
  m4_1m_alone_ms                 /api/scalars, run 0, on the server holding only it  goal <= 15
  m4_1m_among_100m_ms, m4_ratio  the same request on the big server                  goal ratio <= 1.5
  m4_10m_ms                      /api/scalars, the 10M-point series                  goal <= 20
  full_read_100k_ms              /api/points, every point of the 100k series         goal <= 30
  histogram_percentiles_10k_ms   /api/histograms?limit=10000&buckets=0 (percentiles) goal <= 50
  histograms_with_buckets_10k_ms the same with every histogram's buckets
  group_by_ms                    /api/scalar_groups, all runs, grouped by config lr
Each answer is checked where that is cheap: the overlay has every run, x spans the steps, and each
series' min and max are the spikes the generator put there; the full read equals the generated
values; the histogram medians are the generated means. A figure whose endpoint fails is reported
as `<figure>_error` and left out.

    python bench/timeseries.py [--runs 100] [--steps 1000000] [--repeat 10] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from _harness import Server, emit, settle
from dataset import HistogramDataset, ScalarDataset, log_histograms, log_scalars, log_series

PROJECT = "timeseries"
TAG = "train/loss"
GOALS = {
    "overlay_100x1m_ms": 150,
    "m4_1m_alone_ms": 15,
    "m4_ratio": 1.5,
    "m4_10m_ms": 20,
    "full_read_100k_ms": 30,
    "histogram_percentiles_10k_ms": 50,
}


class HttpError(RuntimeError):
    pass


class Client:
    """GETs over one keep-alive connection, as a browser's dashboard makes them."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def get(self, path: str, **query: Any) -> bytes:
        url = f"{path}?{urlencode(query, safe=',/')}" if query else path
        try:
            self._conn.request("GET", url)
            reply = self._conn.getresponse()
            body = reply.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()  # a dropped keep-alive connection: once more on a new one
            self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=300)
            self._conn.request("GET", url)
            reply = self._conn.getresponse()
            body = reply.read()
        if reply.status != 200:
            raise HttpError(f"GET {path}: HTTP {reply.status}: {body[:300].decode(errors='replace')}")
        return body

    def timed(self, repeat: int, path: str, **query: Any) -> tuple[list[float], dict[str, Any], int]:
        """(ms of each of `repeat` warm GETs, the parsed last answer, its size in bytes)."""
        body = self.get(path, **query)  # warm: caches, and the first query plan
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            body = self.get(path, **query)
            times.append(time.perf_counter() - start)
        return [t * 1e3 for t in times], json.loads(body), len(body)

    def close(self) -> None:
        self._conn.close()


def check_series(series: dict[str, Any], data: ScalarDataset, run: int) -> list[str]:
    """What is wrong with one downsampled series of run index `run` (empty: nothing)."""
    problems = []
    x = np.asarray(series["x"], dtype=np.float64)
    y = np.asarray([np.nan if v is None else v for v in series["y"]], dtype=np.float64)
    if x.size == 0:
        return [f"{series['run_id']}: no points"]
    if x.min() != 0 or x.max() != data.steps - 1:
        problems.append(f"{series['run_id']}: x spans {x.min()}..{x.max()}, not 0..{data.steps - 1}")
    low, high = data.extremes(run)
    if np.nanmin(y) != low or np.nanmax(y) != high:
        problems.append(f"{series['run_id']}: y spans {np.nanmin(y)}..{np.nanmax(y)}, logged {low}..{high}")
    if series.get("count") not in (None, data.steps):
        problems.append(f"{series['run_id']}: count {series['count']}, logged {data.steps}")
    return problems


def check_overlay(body: dict[str, Any], data: ScalarDataset) -> list[str]:
    index = {run_id: i for i, run_id in enumerate(data.run_ids)}
    found = [s["run_id"] for s in body["series"]]
    if sorted(found) != sorted(data.run_ids):
        return [f"{len(found)} series for {len(data.run_ids)} runs"]
    return [p for s in body["series"] for p in check_series(s, data, index[s["run_id"]])]


def check_points(body: dict[str, Any], data: ScalarDataset) -> list[str]:
    problems = []
    if body.get("count") != data.steps:
        problems.append(f"count {body.get('count')}, logged {data.steps}")
    if body.get("step") != list(range(data.steps)):
        problems.append("steps are not 0..n-1 in order")
    if any(body.get("rank", [])):
        problems.append("ranks other than 0")
    values = np.asarray([np.nan if v is None else v for v in body.get("value", [])], dtype=np.float64)
    if not np.array_equal(values, data.values(0)):
        problems.append("values differ from those logged")
    return problems


def check_histograms(body: dict[str, Any], hist: HistogramDataset) -> list[str]:
    bands = body["percentiles"]
    if bands["steps"] != list(range(hist.count)):
        return [f"{len(bands['steps'])} histograms' percentiles for {hist.count} logged"]
    median = np.asarray(bands["values"], dtype=np.float64)[:, list(bands["q"]).index(50.0)]
    if not np.allclose(median, hist.means, rtol=0, atol=1e-9):
        worst = float(np.abs(median - hist.means).max())
        return [f"medians differ from the logged means by up to {worst:.3g}"]
    return []


def check_groups(body: dict[str, Any], data: ScalarDataset) -> list[str]:
    """One group per lr value with exactly its runs, every run counted in every column, min <= mean <= max."""
    expected: dict[float, list[str]] = {}
    for run_id, config in zip(data.run_ids, data.configs, strict=True):
        expected.setdefault(float(config["lr"]), []).append(run_id)
    groups = body.get("groups")
    if not isinstance(groups, list):
        return [f"no 'groups' list in the answer (keys: {sorted(body)})"]
    problems = []
    if sorted(float(g["label"]) for g in groups) != sorted(expected):
        problems.append(f"groups {[g['label'] for g in groups]}, logged lr values {sorted(expected)}")
    for group in groups:
        runs = expected.get(float(group["label"]), [])
        if sorted(group["runs"]) != sorted(runs):
            problems.append(f"group {group['label']}: runs {group['runs'][:3]}..., logged {runs[:3]}...")
        if any(n != len(runs) for n in group["count"]):
            problems.append(f"group {group['label']}: counts {sorted(set(group['count']))}, {len(runs)} runs")
        mean, low, high = (np.asarray(group[k], dtype=np.float64) for k in ("mean", "min", "max"))
        if not (np.all(low <= mean + 1e-12) and np.all(mean <= high + 1e-12)):
            problems.append(f"group {group['label']}: a mean outside its min..max")
    return problems


def measure(
    name: str,
    figures: dict[str, Any],
    problems: dict[str, list[str]],
    fn: Callable[[], tuple[list[float], dict[str, Any], int]],
    check: Callable[[dict[str, Any]], list[str]] | None = None,
) -> dict[str, Any] | None:
    """Run one timed request: its median into figures[name] (or the error into figures[name + '_error']),
    and its fastest time (the spread shows when the machine was busy) and answer size beside it."""
    try:
        times, body, size = fn()
    except HttpError as exc:
        figures[f"{name}_error"] = str(exc)
        print(f"{name}: {exc}")
        return None
    ms = figures[name] = statistics.median(times)
    base = name.removesuffix("_ms")
    figures[f"{base}_min_ms"] = min(times)
    figures[f"{base}_bytes"] = size
    if check is not None:
        problems[name] = check(body)
    print(f"{name}: {ms:.1f} ms ({size:,} bytes){'; ' + '; '.join(problems[name][:3]) if problems.get(name) else ''}")
    return body


def peak_rss_mib(server: Server) -> float:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def data_mib(server: Server) -> float:
    return sum(p.stat().st_size for p in server.data_dir.iterdir() if p.is_file()) / (1 << 20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1_000_000, help="points per run")
    parser.add_argument("--long-steps", type=int, default=10_000_000, help="points of the one long series")
    parser.add_argument("--read-points", type=int, default=100_000, help="points of the series read in full")
    parser.add_argument("--histograms", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=4, help="processes that send the runs")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--settle-timeout", type=float, default=900.0, help="seconds to wait for compaction")
    parser.add_argument("--quick", action="store_true", help="10 runs x 100k steps, a 1M series, 5 repeats")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.steps, args.long_steps, args.repeat = 10, 100_000, 1_000_000, 5

    figures: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    query = {"tag": TAG, "x": "step", "width": 1000}
    with tempfile.TemporaryDirectory(prefix="runstream-timeseries-") as tmp:
        # The baseline first, and alone on the machine: the same series as run 0 of the big server.
        with Server(data_dir=Path(tmp) / "alone" / "data") as alone:
            one = log_scalars(alone.address, 1, [TAG], args.steps, project=PROJECT, writers=1)
            figures["alone_settle_seconds"] = settle(alone, args.settle_timeout)[0]
            client = Client(alone.http_port)
            alone_body = measure(
                "m4_1m_alone_ms",
                figures,
                problems,
                lambda: client.timed(args.repeat, "/api/scalars", runs=one.run_ids[0], **query),
                lambda body: check_overlay(body, one),
            )
            client.close()

        with Server(data_dir=Path(tmp) / "big" / "data") as big:
            data = log_scalars(big.address, args.runs, [TAG], args.steps, project=PROJECT, writers=args.writers)
            print(f"logged {data.points:,} points ({args.runs} runs) in {data.seconds:.1f}s")
            long = log_series(big.address, args.long_steps, project=PROJECT, name="long", run=args.runs)
            print(f"logged a {long.points:,}-point series in {long.seconds:.1f}s")
            read = log_series(big.address, args.read_points, project=PROJECT, name="read", run=args.runs + 1)
            hist = log_histograms(big.address, args.histograms, 64, project=PROJECT)
            print(f"logged {hist.count:,} histograms in {hist.seconds:.1f}s")
            ingest_total_s = data.seconds + long.seconds + read.seconds + hist.seconds
            settle_s, reports_compaction = settle(big, args.settle_timeout)
            print(f"settled in {settle_s:.1f}s" if reports_compaction else "no 'uncompacted_points' in /healthz")
            figures["db_mib"] = data_mib(big)

            client = Client(big.http_port)
            all_runs = ",".join(data.run_ids)
            measure(
                "overlay_100x1m_ms",
                figures,
                problems,
                lambda: client.timed(args.repeat, "/api/scalars", runs=all_runs, **query),
                lambda body: check_overlay(body, data),
            )
            among_body = measure(
                "m4_1m_among_100m_ms",
                figures,
                problems,
                lambda: client.timed(args.repeat, "/api/scalars", runs=data.run_ids[0], **query),
                lambda body: check_overlay(body, dataclasses.replace(data, run_ids=data.run_ids[:1])),
            )
            measure(
                "m4_10m_ms",
                figures,
                problems,
                lambda: client.timed(args.repeat, "/api/scalars", runs=long.run_ids[0], **query),
                lambda body: check_overlay(body, long),
            )
            measure(
                "full_read_100k_ms",
                figures,
                problems,
                lambda: client.timed(args.repeat, "/api/points", run=read.run_ids[0], tag=TAG),
                lambda body: check_points(body, read),
            )
            measure(
                "histogram_percentiles_10k_ms",
                figures,
                problems,
                lambda: client.timed(
                    args.repeat, "/api/histograms", run=hist.run_id, tag=hist.tag, limit=hist.count, buckets=0
                ),
                lambda body: check_histograms(body, hist),
            )
            measure(  # as above, with every histogram's bucket arrays too (the offset view draws them)
                "histograms_with_buckets_10k_ms",
                figures,
                problems,
                lambda: client.timed(args.repeat, "/api/histograms", run=hist.run_id, tag=hist.tag, limit=hist.count),
                lambda body: check_histograms(body, hist),
            )
            measure(
                "group_by_ms",
                figures,
                problems,
                lambda: client.timed(args.repeat, "/api/scalar_groups", runs=all_runs, group_by="lr", **query),
                lambda body: check_groups(body, data),
            )
            client.close()
            figures["server_peak_rss_mib"] = peak_rss_mib(big)

    if alone_body is not None and among_body is not None:
        same = [(s["x"], s["y"]) for s in alone_body["series"]] == [(s["x"], s["y"]) for s in among_body["series"]]
        figures["m4_same_answer"] = same
        if not same:
            problems.setdefault("m4_1m_among_100m_ms", []).append("differs from the answer of the server alone")
    if "m4_1m_alone_ms" in figures and "m4_1m_among_100m_ms" in figures:
        figures["m4_ratio"] = figures["m4_1m_among_100m_ms"] / figures["m4_1m_alone_ms"]
    wrong = {name: found for name, found in problems.items() if found}
    for name, found in wrong.items():
        print(f"WRONG {name}: {'; '.join(found[:5])}{' ...' if len(found) > 5 else ''}")
    missed = [name for name, goal in GOALS.items() if name not in figures or figures[name] > goal]
    overlay = figures.get("overlay_100x1m_ms", float("nan"))
    emit(
        "timeseries",
        overlay,
        "ms",
        **figures,
        runs=args.runs,
        steps=args.steps,
        long_steps=args.long_steps,
        read_points=args.read_points,
        histograms=args.histograms,
        repeat=args.repeat,
        dataset_points=data.points + long.points + read.points,
        ingest_seconds=data.seconds,
        ingest_points_per_s=data.points / data.seconds,
        long_ingest_seconds=long.seconds,
        ingest_total_seconds=ingest_total_s,
        histogram_ingest_seconds=hist.seconds,
        settle_seconds=settle_s,
        compaction_reported=reports_compaction,
        correct=not wrong,
        wrong=sorted(wrong),
        goals=GOALS,
        goals_missed=missed,
        goal_met=not missed,
    )
    return 0 if not wrong else 1


if __name__ == "__main__":
    raise SystemExit(main())
