"""Scale-out on DuckLake: 8 writer processes, 2 ingest servers on one lake, one server SIGKILLed mid-run.

Run it in the lake's venv (DuckDB 1.5.5 and the lake extra) with a PostgreSQL for the catalog:

    .venv/lake/bin/python bench/lake.py [--points 20000000] [--writers 8] [--catalog LIBPQ]

`--catalog` (default: RUNSTREAM_LAKE_PG, as tests/lake take it) is a libpq string of a PostgreSQL server
without a dbname; the bench creates a fresh database there for the run and drops it at the end. The
lake's data path is a temporary local directory.

Phases, in one run:

1. Baseline: `--writers` SDK processes, each its own run, log `--points` in all (10 tags per
   `Run.log` call, as bench/ingest.py's writers) into ONE single-file server (no lake). Points/s from
   the writers' release until the last `run.finish()` returned (every point acknowledged).
2. Lake: the same writers against two `runstream serve --lake` servers A and B on one fresh lake, each
   writer given both addresses (even writers "A,B", odd ones "B,A"). When the two servers have
   committed half the points, A is SIGKILLed; its writers fail over to B by themselves (the SDK).
   Every `finish()` must report nothing unsent and nothing rejected. Then A is started again on its
   data, its mover moves what it had acknowledged, and the bench waits (at most `--drain-timeout`)
   until the lake holds every point.
3. Visibility: after the drain, a point with a new tag is logged through B and flushed (acknowledged);
   a separate read-only DuckDB 1.5.5 connection (lake.attach(..., read_only=True), as a notebook's
   ATTACH) polls the lake until it sees the point. `--visible-repeat` times.
4. Overlay: 20 runs x 1M points of one tag (`--overlay-runs`, `--overlay-points`) loaded through the
   real gRPC ingest path (bench/dataset.py: batches built with NumPy, so the time goes to the servers),
   runs 0-9 into A and 10-19 into B, drained into the lake; then `GET /api/scalars?runs=<the 20
   ids>&tag=...&width=1000` on A's HTTP port and on B's, `--overlay-repeat` warm requests each. (The main
   phase's 8 runs x 10 tags cannot make 20 series of 1M points of one tag, hence this separate load.)

The last line (JSON) has:
- `value`: points/s of the lake phase (points / seconds from the writers' release until every writer's
  finish was acknowledged); `ratio` = value / the single-file baseline's points/s (`baseline_points_per_s`)
  measured in the same run with the same writers. Goal >= 0.5 (parity is not expected on 2 cores: the
  two servers, their movers and the 8 writers share them).
- `lost`, `duplicated`: by SQL over the lake from a separate read-only connection, summed over
  (run_id, tag): expected steps - count(DISTINCT step), and count(*) - count(DISTINCT step). Goal 0 and 0.
  `drained` says whether the lake held every point within `--drain-timeout`; `drain_s` how long after
  A's restart it took.
- `visible_s`: median seconds from a flush's acknowledgement until a separate read-only DuckDB client
  sees the point (`visible_s_max`: the worst). Goal <= 5.
- `overlay_ms`: the worse of the two servers' median milliseconds for the 20-run overlay (`overlay_ms_a`,
  `overlay_ms_b`). Goal <= 200. `overlay_complete` says, per server, whether its answer had all 20 runs
  with 1M points each: a server whose HTTP API reads only its own file answers with the runs it took, and
  its figure is then over partial data.
- `failover`: when A was killed (seconds into the phase, points committed by then, and the two servers'
  points/s until then), each writer's report (seconds from the release until its last log call and until
  its finish returned); `runs_finished`: runs the lake has as finished (each writer's finish reached a
  server); `killed_server_restart_s`: A's restart until /healthz answered.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from _harness import Server, emit, settle
from dataset import ScalarDataset, log_scalars
from timeseries import Client, HttpError

TAGS = [f"train/metric_{i}" for i in range(10)]
POOL = 64
OVERLAY_TAG = "overlay/loss"
OVERLAY_PROJECT = "lakeov"
GOALS = {"ratio": 0.5, "lost": 0, "duplicated": 0, "visible_s": 5.0, "overlay_ms": 200.0}


# -- the writers ----------------------------------------------------------------------------------------


def writer(index: int, servers: str, run_id: str, steps: int, spool: str, barrier: Barrier, results: Any) -> None:
    """One training process: its own run; wait for the start signal, log `steps` x 10 tags, finish."""
    import runstream

    run = runstream.init(project="lakebench", name=run_id, run_id=run_id, server=servers, dir=spool)
    rows = [{tag: float(j * 10 + i) * 0.001 for i, tag in enumerate(TAGS)} for j in range(POOL)]
    log = run.log
    barrier.wait()
    for step in range(steps):
        log(rows[step % POOL], step=step)
    logged = time.monotonic()
    report = run.finish(timeout=900)
    results.put(
        {
            "index": index,
            "servers": servers,
            "logged": logged,
            "ended": time.monotonic(),  # CLOCK_MONOTONIC is system-wide: comparable with the parent's
            "unsent": report.unsent_points,
            "rejected": report.rejected_batches,
            "spooled": report.spooled_points,
            "error": report.last_error,
        }
    )


@dataclass
class Phase:
    """One ingest phase: seconds from the writers' release until the last finish returned, their reports."""

    seconds: float
    reports: list[dict[str, Any]]
    events: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(r["unsent"] == 0 and r["rejected"] == 0 for r in self.reports)


def ingest(
    addresses: list[str],
    run_ids: list[str],
    steps: int,
    spool: Path,
    watch: Callable[[float], dict[str, Any] | None] | None = None,
) -> Phase:
    """Spawn one writer per run id (writer i lists addresses[i % len] first); release them together and
    wait for all. `watch(seconds since release)` is called every 0.1 s until it returns a dict (what it
    did, kept in Phase.events)."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(run_ids) + 1)
    results = ctx.Queue()
    procs = []
    for i, run_id in enumerate(run_ids):
        first = i % len(addresses)
        servers = ",".join(addresses[first:] + addresses[:first])
        procs.append(
            ctx.Process(target=writer, args=(i, servers, run_id, steps, str(spool), barrier, results), daemon=True)
        )
    for p in procs:
        p.start()
    barrier.wait(timeout=300)
    t0 = time.monotonic()
    reports: list[dict[str, Any]] = []
    events: dict[str, Any] = {}
    last_line = t0
    while len(reports) < len(procs):
        try:
            reports.append(results.get(timeout=0.1))
        except Exception:  # queue.Empty: nothing yet
            pass
        now = time.monotonic()
        if watch is not None and not events:
            events = watch(now - t0) or {}
        if now - last_line >= 10:
            print(f"  {now - t0:.0f}s: {len(reports)} of {len(procs)} writers finished", flush=True)
            last_line = now
        if now - t0 > 1800:
            raise TimeoutError(f"writers still running after 30 min; finished: {reports}")
    for p in procs:
        p.join(60)
    seconds = max(r["ended"] for r in reports) - t0
    for r in reports:  # seconds since the release
        r["logged"], r["ended"] = round(r["logged"] - t0, 2), round(r["ended"] - t0, 2)
    return Phase(seconds, sorted(reports, key=lambda r: r["index"]), events)


# -- the lake: a fresh catalog database, a read-only client ----------------------------------------------


@contextmanager
def fresh_lake(server: str, data_path: Path) -> Iterator[Any]:
    """A new, empty lake: its own PostgreSQL database (dropped at the end) and data directory."""
    import psycopg2  # type: ignore[import-untyped,import-not-found,unused-ignore]

    from runstream_service.store.lake import LakeConfig

    name = f"lakebench_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{server} dbname=postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield LakeConfig(f"{server} dbname={name}", str(data_path))
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


class LakeReader:
    """A separate read-only DuckDB client of the lake, as a notebook has it (it sees each new lake commit)."""

    def __init__(self, config: Any) -> None:
        import duckdb

        from runstream_service.store import lake

        self._con = duckdb.connect()
        lake.attach(self._con, config, read_only=True)

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        self._con.close()


def wait_for_count(reader: LakeReader, where: str, want: int, timeout: float) -> tuple[float, int]:
    """Poll count(*) of lake.scalars WHERE `where` until it reaches `want`: (seconds, last count)."""
    started = time.monotonic()
    last_print = started
    while True:
        count = int(reader.rows(f"SELECT count(*) FROM lake.scalars WHERE {where}")[0][0])
        now = time.monotonic()
        if count >= want or now - started > timeout:
            return now - started, count
        if now - last_print >= 10:
            print(f"  draining: {count:,} of {want:,} points in the lake after {now - started:.0f}s", flush=True)
            last_print = now
        time.sleep(0.5)


def lost_and_duplicated(reader: LakeReader, prefix: str, run_ids: list[str], steps: int) -> tuple[int, int]:
    """Per (run_id, tag): expected steps - distinct steps (lost), count - distinct steps (duplicated)."""
    found = {
        (run_id, tag): (int(count), int(distinct))
        for run_id, tag, count, distinct in reader.rows(
            "SELECT run_id, tag, count(*), count(DISTINCT step) FROM lake.scalars "
            "WHERE starts_with(run_id, ?) GROUP BY ALL",
            prefix,
        )
    }
    lost = duplicated = 0
    for run_id in run_ids:
        for tag in TAGS:
            count, distinct = found.pop((run_id, tag), (0, 0))
            lost += steps - distinct
            duplicated += count - distinct
    duplicated += sum(count for count, _ in found.values())  # series nobody logged
    return lost, duplicated


def finished(reader: LakeReader, run_ids: list[str]) -> int:
    """How many of `run_ids` the lake's runs view has as finished (the SDK's finish reached a server)."""
    rows = reader.rows("SELECT count(*) FROM lake.runs WHERE status = 'finished' AND list_contains(?, run_id)", run_ids)
    return int(rows[0][0])


# -- the measurements -----------------------------------------------------------------------------------


def visible_seconds(server: Server, reader: LakeReader, spool: Path, repeat: int) -> list[float]:
    """Seconds from a flush's acknowledgement (by `server`) until `reader` sees the point, `repeat` times."""
    import runstream

    run = runstream.init(project="lakebench", name="visible", run_id="lakevis", server=server.address, dir=str(spool))
    times = []
    try:
        for i in range(repeat):
            tag = f"visible/{uuid.uuid4().hex[:8]}"
            run.log({tag: float(i)}, step=i)
            if not run.flush(timeout=60):
                raise RuntimeError("the visibility point was not acknowledged within 60 s")
            acked = time.monotonic()
            while not reader.rows("SELECT 1 FROM lake.scalars WHERE run_id = 'lakevis' AND tag = ?", tag):
                if time.monotonic() - acked > 120:
                    raise TimeoutError(f"the point {tag} was not visible in the lake 120 s after its ack")
                time.sleep(0.02)
            times.append(time.monotonic() - acked)
            print(f"  visible after {times[-1]:.2f}s", flush=True)
    finally:
        run.finish(timeout=60)
    return times


def load_overlay(a: Server, b: Server, runs: int, steps: int) -> list[ScalarDataset]:
    """`runs` runs x `steps` points of one tag: the first half into A, the rest into B, at the same time."""
    half = runs // 2
    parts: list[ScalarDataset | BaseException] = [RuntimeError("not run")] * 2

    def load(slot: int, server: Server, count: int, first: int) -> None:
        try:
            parts[slot] = log_scalars(
                server.address,
                count,
                [OVERLAY_TAG],
                steps,
                project=OVERLAY_PROJECT,
                writers=2,
                first_run=first,
                run_names=[f"run-{i:02d}" for i in range(first, first + count)],
            )
        except BaseException as exc:  # handed to the main thread
            parts[slot] = exc

    threads = [
        threading.Thread(target=load, args=(0, a, half, 0)),
        threading.Thread(target=load, args=(1, b, runs - half, half)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = []
    for part in parts:
        if isinstance(part, BaseException):
            raise part
        done.append(part)
    return done


def overlay(server: Server, run_ids: list[str], own: list[str], steps: int, repeat: int) -> tuple[float, bool, str]:
    """(median ms of `repeat` warm overlays of `run_ids` on `server`'s HTTP API, whether the answer had every
    run with `steps` points, what it had). A server that refuses the runs it does not know (its API reads only
    its own file) is asked for `own`, the runs it took, instead: a figure over partial data, said so."""
    client = Client(server.http_port)
    asked = run_ids
    try:
        try:
            times, body, _ = client.timed(repeat, "/api/scalars", runs=",".join(run_ids), tag=OVERLAY_TAG, width=1000)
        except HttpError as exc:
            if "HTTP 404" not in str(exc):
                raise
            print(f"  {exc}; asking for its own {len(own)} runs instead", flush=True)
            asked = own
            times, body, _ = client.timed(repeat, "/api/scalars", runs=",".join(own), tag=OVERLAY_TAG, width=1000)
    finally:
        client.close()
    counts = {s["run_id"]: s["count"] for s in body["series"]}
    complete = sorted(counts) == sorted(run_ids) and all(c == steps for c in counts.values())
    seen = f"asked {len(asked)} runs, answered {len(counts)} of {len(run_ids)} runs, {sum(counts.values()):,} points"
    return statistics.median(times), complete, seen


def lake_server(root: Path, name: str, config: Any) -> Server:
    return Server(root / name / "data", extra_args=("--lake", config.catalog, "--data-path", config.data_path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=20_000_000, help="total scalar points (all writers)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--catalog", default=os.environ.get("RUNSTREAM_LAKE_PG", ""), help="PostgreSQL libpq string")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for the lake to hold all")
    parser.add_argument("--visible-repeat", type=int, default=5)
    parser.add_argument("--overlay-runs", type=int, default=20)
    parser.add_argument("--overlay-points", type=int, default=1_000_000, help="points per overlaid run")
    parser.add_argument("--overlay-repeat", type=int, default=10)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress lines in order with the writers'
    if not args.catalog:
        parser.error("give --catalog 'host=... port=... user=...' or set RUNSTREAM_LAKE_PG (a PostgreSQL server)")
    import duckdb

    if duckdb.__version__ != "1.5.5":
        parser.error(f"the lake needs DuckDB 1.5.5 (this is {duckdb.__version__}): run with .venv/lake/bin/python")
    steps = max(1, args.points // args.writers // len(TAGS))
    points = steps * len(TAGS) * args.writers
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="runstream-lake-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"baseline: {args.writers} writers, {points:,} points into one single-file server", flush=True)
        with Server(tmp / "single" / "data") as single:
            base_ids = [f"single-{i}" for i in range(args.writers)]
            baseline = ingest([single.address], base_ids, steps, tmp / "spool-single")
        baseline_rate = points / baseline.seconds
        print(f"baseline: {baseline_rate:,.0f} points/s ({baseline.seconds:.1f}s), complete {baseline.complete}")

        with fresh_lake(args.catalog, tmp / "lake-data") as config:
            a, b = lake_server(tmp, "a", config), lake_server(tmp, "b", config)
            a.start(60)
            b.start(60)
            reader: LakeReader | None = None
            try:
                run_ids = [f"lakew-{i}" for i in range(args.writers)]

                def kill_a_at_half(elapsed: float) -> dict[str, Any] | None:
                    committed = a.points_committed() + b.points_committed()
                    if committed < points // 2:
                        return None
                    a.kill()
                    print(f"  {elapsed:.1f}s: SIGKILL server A ({committed:,} points committed by A and B)")
                    return {
                        "killed_at_s": round(elapsed, 2),
                        "committed_at_kill": committed,
                        "points_per_s_before_kill": round(committed / elapsed),  # both servers up, no failover
                    }

                print(f"lake: {args.writers} writers, {points:,} points into servers A and B; A killed at half")
                phase = ingest([a.address, b.address], run_ids, steps, tmp / "spool-lake", kill_a_at_half)
                value = points / phase.seconds
                print(
                    f"lake: {value:,.0f} points/s ({phase.seconds:.1f}s), complete {phase.complete}; "
                    f"failover {phase.events or 'never: A was not killed'}"
                )
                restarted = time.monotonic()
                a.start(120)
                restart_s = time.monotonic() - restarted
                reader = LakeReader(config)
                drain_s, in_lake = wait_for_count(reader, "starts_with(run_id, 'lakew-')", points, args.drain_timeout)
                drained = in_lake >= points
                lost, duplicated = lost_and_duplicated(reader, "lakew-", run_ids, steps)
                print(
                    f"lake after A's restart: {in_lake:,} of {points:,} points in {drain_s:.1f}s "
                    f"(drained {drained}); lost {lost}, duplicated {duplicated}",
                    flush=True,
                )

                print("visibility through B:", flush=True)
                visible = visible_seconds(b, reader, tmp / "spool-visible", args.visible_repeat)
                finished_runs = finished(reader, run_ids)  # the finish notes move after the points
                print(f"runs finished in the lake: {finished_runs} of {len(run_ids)}", flush=True)

                overlay_points = args.overlay_runs * args.overlay_points
                print(f"overlay: loading {args.overlay_runs} runs x {args.overlay_points:,} points", flush=True)
                loaded = time.monotonic()
                parts = load_overlay(a, b, args.overlay_runs, args.overlay_points)
                overlay_ids = [run_id for part in parts for run_id in part.run_ids]
                load_s = time.monotonic() - loaded
                overlay_drain_s, overlay_in_lake = wait_for_count(
                    reader, f"starts_with(run_id, '{OVERLAY_PROJECT}-')", overlay_points, args.drain_timeout
                )
                print(
                    f"overlay: loaded in {load_s:.1f}s, {overlay_in_lake:,} of {overlay_points:,} in the lake "
                    f"{overlay_drain_s:.1f}s later",
                    flush=True,
                )
                for server in (a, b):
                    try:
                        settle(server, timeout=300)
                    except TimeoutError as exc:
                        print(f"  not settled: {exc}")
                results = {}
                for label, server, part in (("a", a, parts[0]), ("b", b, parts[1])):
                    ms, complete, seen = overlay(
                        server, overlay_ids, part.run_ids, args.overlay_points, args.overlay_repeat
                    )
                    results[label] = (ms, complete)
                    print(f"overlay on {label.upper()}: {ms:.1f} ms, complete {complete} ({seen})", flush=True)
            finally:
                if reader is not None:
                    reader.close()
                for server in (a, b):
                    try:
                        server.stop()
                    finally:
                        server.cleanup()

    overlay_ms = max(ms for ms, _ in results.values())
    failover = {**phase.events, "reports": phase.reports}
    goal_met = (
        value / baseline_rate >= GOALS["ratio"]
        and lost == 0
        and duplicated == 0
        and statistics.median(visible) <= GOALS["visible_s"]
        and overlay_ms <= GOALS["overlay_ms"]
        and all(complete for _, complete in results.values())
    )
    print(f"total {time.monotonic() - started:.0f}s; load average {os.getloadavg()[0]:.1f}")
    emit(
        "lake",
        value,
        "points/s",
        ratio=value / baseline_rate,
        lost=lost,
        duplicated=duplicated,
        drained=drained,
        drain_s=drain_s,
        visible_s=statistics.median(visible),
        visible_s_max=max(visible),
        overlay_ms=overlay_ms,
        overlay_ms_a=results["a"][0],
        overlay_ms_b=results["b"][0],
        overlay_complete={"a": results["a"][1], "b": results["b"][1]},
        points=points,
        writers=args.writers,
        seconds=phase.seconds,
        complete=phase.complete,
        runs_finished=finished_runs,
        baseline_points_per_s=baseline_rate,
        baseline_seconds=baseline.seconds,
        baseline_complete=baseline.complete,
        killed_server_restart_s=restart_s,
        overlay_load_s=load_s,
        overlay_drain_s=overlay_drain_s,
        failover=failover,
        load_average=os.getloadavg()[0],
        goals=GOALS,
        goal_met=goal_met,
    )
    return 0 if phase.complete and baseline.complete and lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
