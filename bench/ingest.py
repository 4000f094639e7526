"""End to end ingest: 4 SDK writer processes -> one server -> committed in DuckDB, in points/s.

Writers are spawned processes; processes 0,1 are ranks 0,1 of run "bench-a", processes 2,3 ranks 0,1
of run "bench-b". Each logs points/4 scalar points as `Run.log` calls of 10 tags. The clock starts
when all writers are connected and released together, and stops when the server's /healthz
reports every point committed. The server compacts as it always does (store/compactor.py: every
2M points, but it waits while more than 1M points/s come in, until 16M wait); what the compactor
did until then is printed ("meanwhile the compactor"), and how long after the last commit every
point was compacted (caught_up_s). Then the server is stopped (SIGTERM: drain, commit, checkpoint) and
`SELECT count(*) FROM scalars` must equal the points logged exactly, else the script exits 1.

Baseline in the same run: the same number of rows (series_id int32, step int64, rank int32,
wall_time float64, value float64) inserted straight into a fresh DuckDB file table from pyarrow
tables in chunks of --chunk rows, one transaction per chunk.

The last line's figures: `value` (points/s end to end, goal >= 4M), `sdk_cpu_us_per_point` (the writer
processes' CPU, caller and sender threads, per point: what logging costs a training job; goal <= 0.2),
`server_ratio` (the CPU seconds of DuckDB's own insert loop over the same rows / the server's CPU seconds
from the start until the last commit; goal >= 0.8), `server_cpu_caught_up_s` (the server's CPU until the
compactor has caught up too, so that work moved into compaction shows), `count_ok` (the count was exact in
every repetition). Medians over --repeat.

    python bench/ingest.py [--points 10000000] [--writers 4] [--repeat 5] [--chunk 1000000] [--py-spy DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from _harness import Server, emit, process_cpu_seconds

TAGS = [f"train/metric_{i}" for i in range(10)]
POOL = 64


def writer(index: int, address: str, points: int, barrier: Barrier, results: Any) -> None:
    """One training process: connect, wait for the start signal, log, finish."""
    import runstream

    run = runstream.init(
        project="bench",
        name=f"ingest-{'ab'[index // 2]}",
        server=address,
        run_id=f"bench-{'ab'[index // 2]}",
        rank=index % 2,
        world_size=2,
    )
    rows = [{tag: float(j * 10 + i) * 0.001 for i, tag in enumerate(TAGS)} for j in range(POOL)]
    steps = points // len(TAGS)
    log = run.log
    barrier.wait()
    started, cpu_started = time.perf_counter(), time.process_time()
    for step in range(steps):
        log(rows[step % POOL], step=step)
    logged = time.perf_counter()
    report = run.finish(timeout=600)
    finished = time.perf_counter()
    results.put(
        {
            "index": index,
            "log_s": logged - started,
            "finish_s": finished - logged,
            "cpu_s": time.process_time() - cpu_started,  # all threads of this process: caller + sender
            "unsent": report.unsent_points,
            "error": report.last_error,
        }
    )


def bench_runstream(
    points: int, writers: int, py_spy: Path | None
) -> tuple[float, int, list[dict[str, Any]], dict[str, Any]]:
    ctx = mp.get_context("spawn")
    per_writer = points // writers
    spies: list[subprocess.Popen[bytes]] = []
    with Server() as server:
        barrier = ctx.Barrier(writers + 1)
        results = ctx.Queue()
        procs = [
            ctx.Process(target=writer, args=(i, server.address, per_writer, barrier, results)) for i in range(writers)
        ]
        for p in procs:
            p.start()
        if py_spy is not None:
            assert server.process is not None
            targets = {"server": server.process.pid, "writer0": procs[0].pid}
            spies = [_spy(pid, py_spy / f"{name}.txt") for name, pid in targets.items() if pid is not None]
            time.sleep(1.0)  # let py-spy attach
        assert server.process is not None
        barrier.wait(timeout=120)
        t0 = time.monotonic()
        server_cpu = process_cpu_seconds(server.process.pid)
        # Polled every 50 ms: each /healthz costs the server about 0.2 ms of CPU, which this figure counts.
        t_end = server.wait_committed(per_writer * writers, timeout=1800, poll=0.05)
        elapsed = t_end - t0
        server_cpu_start = server_cpu
        server_cpu = process_cpu_seconds(server.process.pid) - server_cpu_start
        during = server.health()  # the compactor's work while the points came in
        while server.health().get("uncompacted_points", 0) > 0 and time.monotonic() - t_end < 600:
            time.sleep(0.1)
        during["caught_up_s"] = round(time.monotonic() - t_end, 2)  # until every point was compacted
        server_cpu_caught_up = process_cpu_seconds(server.process.pid) - server_cpu_start
        stats = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(60)
        health = server.health()
        server.stop()
        count = int(server.sql("SELECT count(*) FROM scalars")[0][0])
        detail = server.sql(
            "SELECT run_id, rank, count(*), count(DISTINCT tag), max(step) FROM scalars GROUP BY ALL ORDER BY ALL"
        )
        health["per_run_rank"] = [list(r) for r in detail]
        health["db_bytes"] = server.database.stat().st_size
        health["server_cpu_s"] = server_cpu
        health["server_cpu_caught_up_s"] = server_cpu_caught_up
        keys = ("compactions", "merges", "compaction_deferred", "uncompacted_points", "caught_up_s")
        health["during"] = {k: during.get(k) for k in keys}
    for spy in spies:
        spy.wait(60)
    return elapsed, count, sorted(stats, key=lambda s: s["index"]), health


def _spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--format", "raw", "--threads", "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bench_duckdb_arrow(points: int, chunk: int) -> tuple[float, float]:
    """Seconds (wall, and CPU of this process: DuckDB's insert loop on all its threads) to insert `points`
    rows from Arrow into a fresh file table, one commit per chunk."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    steps = np.repeat(np.arange(chunk // len(TAGS), dtype=np.int64), len(TAGS))
    n = len(steps)
    base: dict[str, np.ndarray] = {
        "series_id": np.tile(np.arange(len(TAGS), dtype=np.int32), n // len(TAGS)),
        "rank": np.zeros(n, dtype=np.int32),
        "wall_time": time.time() + np.arange(n, dtype=np.float64) * 1e-6,
        "value": np.random.default_rng(0).standard_normal(n),
    }
    tables = []
    done = 0
    while done < points:  # built before the clock starts
        rows = min(n, points - done)
        offset = done // len(TAGS)
        tables.append(
            pa.table(
                {
                    "series_id": base["series_id"][:rows],
                    "step": steps[:rows] + offset,
                    "rank": base["rank"][:rows],
                    "wall_time": base["wall_time"][:rows],
                    "value": base["value"][:rows],
                }
            )
        )
        done += rows
    with tempfile.TemporaryDirectory(prefix="duckdb-bench-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "baseline.duckdb"))
        con.execute(
            "CREATE TABLE scalar_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, "
            "wall_time DOUBLE NOT NULL, value DOUBLE)"
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        for table in tables:
            con.execute("BEGIN")
            con.register("incoming_rows", table)
            con.execute("INSERT INTO scalar_points SELECT * FROM incoming_rows")
            con.unregister("incoming_rows")
            con.execute("COMMIT")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stored = con.execute("SELECT count(*) FROM scalar_points").fetchone()
        con.close()
    assert stored is not None and stored[0] == points, stored
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000_000, help="total scalar points (all writers)")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each side (fresh server each); medians")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="rows per transaction in the DuckDB baseline")
    parser.add_argument("--py-spy", type=Path, default=None, help="record py-spy profiles of server and writer 0 here")
    args = parser.parse_args()
    step_points = args.writers * len(TAGS)
    points = max(step_points, args.points // step_points * step_points)

    runs: list[tuple[float, int, list[dict[str, Any]], dict[str, Any]]] = []
    baseline: list[float] = []
    baseline_cpu: list[float] = []
    for i in range(args.repeat):  # alternate the two sides, so drift on the machine hits both
        runs.append(bench_runstream(points, args.writers, args.py_spy if i == 0 else None))
        elapsed, count, stats, health = runs[-1]
        wall, cpu = bench_duckdb_arrow(points, args.chunk)
        baseline.append(wall)
        baseline_cpu.append(cpu)
        print(
            f"rep {i}: runstream {points / elapsed:,.0f} points/s ({elapsed:.2f}s, count {count}), "
            f"duckdb arrow {points / baseline[-1]:,.0f} points/s ({baseline[-1]:.2f}s, cpu {baseline_cpu[-1]:.2f}s); "
            f"writers log {[round(s['log_s'], 2) for s in stats]}s, "
            f"finish {[round(s['finish_s'], 2) for s in stats]}s, "
            f"cpu {[round(s['cpu_s'], 2) for s in stats]}s; server cpu {health['server_cpu_s']:.2f}s "
            f"({health['server_cpu_caught_up_s']:.2f}s until compacted), "
            f"batches {health['batches_committed']}, unsent {[s['unsent'] for s in stats]}; "
            f"meanwhile the compactor: {health['during']}"
        )
    print(f"per run/rank (rep {args.repeat - 1}): {health['per_run_rank']}")
    elapsed, count, stats, health = sorted(runs, key=lambda r: r[0])[len(runs) // 2]  # the median run
    baseline_s = statistics.median(baseline)
    rate = points / elapsed
    baseline_rate = points / baseline_s
    count_ok = all(r[1] == points for r in runs)

    # The SDK's cost inside a training job: CPU of the writer processes (caller and sender threads).
    sdk_cpu_us_per_point = statistics.median(sum(s["cpu_s"] for s in r[2]) for r in runs) / points * 1e6
    # The server's cost against DuckDB's own insert of the same rows (CPU of each, medians).
    server_cpu_s = statistics.median(r[3]["server_cpu_s"] for r in runs)
    server_ratio = statistics.median(baseline_cpu) / server_cpu_s
    goals = {"value": 4_000_000, "sdk_cpu_us_per_point": 0.2, "server_ratio": 0.8}
    emit(
        "ingest",
        rate,
        "points/s",
        ratio=rate / baseline_rate,
        sdk_cpu_us_per_point=sdk_cpu_us_per_point,
        server_ratio=server_ratio,
        count_ok=count_ok,
        seconds=elapsed,
        points=points,
        writers=args.writers,
        repeat=args.repeat,
        rates=[round(points / r[0]) for r in runs],
        count=count,
        duckdb_arrow_points_per_s=baseline_rate,
        duckdb_arrow_seconds=baseline_s,
        duckdb_arrow_cpu_s=statistics.median(baseline_cpu),
        duckdb_arrow_rates=[round(points / b) for b in baseline],
        writer_log_s_max=max(s["log_s"] for s in stats),
        writer_cpu_s_total=sum(s["cpu_s"] for s in stats),
        server_cpu_s=server_cpu_s,
        server_cpu_caught_up_s=statistics.median(r[3]["server_cpu_caught_up_s"] for r in runs),
        batches_committed=health["batches_committed"],
        compactor_during=health["during"],
        goals=goals,
        goal_met=rate >= goals["value"]
        and sdk_cpu_us_per_point <= goals["sdk_cpu_us_per_point"]
        and server_ratio >= goals["server_ratio"],
    )
    return 0 if count_ok else 1


if __name__ == "__main__":
    sys.exit(main())
