"""A large database ingested, compacted and merged under `--memory-limit 2GB`: the whole server's peak memory.

Data (bench/dataset.py, through the real gRPC ingest path): --points of one tag, as runs of --steps
points (the default: 300 runs x 1M steps = 300M points), sent --slice runs at a time by --writers
processes (interleaved across the slice's runs, as parallel jobs send them), with a progress line per
slice. Then the server is left to compact and merge until /healthz shows it settled, and 100 of the runs
are overlaid through the HTTP API (/api/scalars, width 1000, the median of --repeat warm requests).
In the middle of ingest, four memory-hungry read-only queries (HUNGRY) are sent at once through POST
/api/sql: their statuses (each should be a 400 from user SQL's memory budget) and the server's peak
resident memory while they ran are printed (`hungry_sql_statuses`, `hungry_sql_rss_mib`).

The server's resident memory is sampled every 0.2 s throughout (ingest, compaction, merges, reads);
`peak_rss_mib` is the kernel's high-water mark of the whole process (VmHWM, so no spike between
samples is missed), with the sampled peak of each phase beside it. After the server is stopped, the
points are counted in its database file (`count_ok`: exactly what was logged).

Last line: {"name": "soak", "value": peak_rss_mib, "unit": "MiB", "peak_rss_mib", "count_ok",
"overlay_ms", ...}; goals: peak_rss_mib <= 3,072 with --memory-limit 2GB, overlay_ms <= 150.

    python bench/soak.py [--points 300000000] [--steps 1000000] [--memory-limit 2GB] [--writers 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from _harness import Server, emit, settle
from dataset import ScalarDataset, log_scalars
from timeseries import Client, check_overlay

PROJECT = "soak"
TAG = "train/loss"
GOALS = {"peak_rss_mib": 3072.0, "overlay_ms": 150.0}


HUNGRY = (  # read-only queries that would take gigabytes: user SQL's budget must stop them (400)
    "SELECT max(len(l)) FROM (SELECT list(range) l FROM range(400000000))",
    "SELECT length(string_agg(range::VARCHAR, ',')) FROM range(400000000)",
    "SELECT max(len(l)) FROM (SELECT range % 4 AS g, list(range) l FROM range(400000000) GROUP BY g)",
    "SELECT count(*) FROM (SELECT DISTINCT range * 7919 FROM range(400000000))",
)


class HungryQueries:
    """The four HUNGRY queries sent at once, `delay` seconds after start() (while a slice streams in):
    their HTTP statuses, how long until all were answered, and the server's peak RSS meanwhile."""

    def __init__(self, port: int, rss: RssSampler, delay: float = 2.0) -> None:
        self._port, self._rss, self._delay = port, rss, delay
        self.statuses: list[int] = []
        self.seconds = 0.0
        self.peak_mib = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _ask(self, sql: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self._port}/api/sql",
            data=json.dumps({"sql": sql}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)

    def _run(self) -> None:
        time.sleep(self._delay)
        started = time.monotonic()
        answers: list[int] = []
        askers = [threading.Thread(target=lambda q=q: answers.append(self._ask(q))) for q in HUNGRY]
        for asker in askers:
            asker.start()
        while any(asker.is_alive() for asker in askers):
            self.peak_mib = max(self.peak_mib, self._rss.read("VmRSS"))
            time.sleep(0.02)
        self.seconds = time.monotonic() - started
        self.statuses = sorted(answers)


class RssSampler:
    """Samples a process's resident memory in a thread; the peak per phase (the phase set by the caller)."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._every = every
        self._stop = threading.Event()
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            rss = self.read("VmRSS")
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)

    def read(self, field: str) -> float:
        """MiB of one /proc/PID/status field (VmRSS now, VmHWM the peak so far); 0 once the process is gone."""
        try:
            for line in self._status.read_text().splitlines():
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=300_000_000, help="points in all (runs x --steps)")
    parser.add_argument("--steps", type=int, default=1_000_000, help="points per run")
    parser.add_argument("--slice", type=int, default=20, help="runs sent at a time (a progress line each)")
    parser.add_argument("--writers", type=int, default=4, help="processes that send a slice")
    parser.add_argument("--memory-limit", default="2GB", help="the server's --memory-limit")
    parser.add_argument("--overlay-runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--settle-timeout", type=float, default=7200.0, help="seconds to wait for compaction")
    args = parser.parse_args()
    runs = max(1, args.points // args.steps)
    width = len(str(runs - 1))
    names = [f"run-{i:0{width}d}" for i in range(runs)]

    figures: dict[str, float] = {"load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="runstream-soak-") as tmp:
        server = Server(data_dir=Path(tmp) / "data", extra_args=("--memory-limit", args.memory_limit))
        with server:
            assert server.process is not None
            with RssSampler(server.process.pid) as rss:
                started = time.monotonic()
                rss.phase = "ingest"
                slices: list[ScalarDataset] = []
                hungry = HungryQueries(server.http_port, rss)
                for first in range(0, runs, args.slice):
                    count = min(args.slice, runs - first)
                    if first == (runs // args.slice // 2) * args.slice:  # in the middle of ingest
                        hungry.start()
                    slices.append(
                        log_scalars(
                            server.address,
                            count,
                            [TAG],
                            args.steps,
                            project=PROJECT,
                            writers=args.writers,
                            run_names=names[first : first + count],
                            first_run=first,
                        )
                    )
                    done = (first + count) * args.steps
                    health = server.health()
                    print(
                        f"{done:,} of {runs * args.steps:,} points sent in {time.monotonic() - started:.0f}s; "
                        f"rss {rss.read('VmRSS'):,.0f} MiB (peak {rss.read('VmHWM'):,.0f}); "
                        f"uncompacted {health.get('uncompacted_points', 0):,}, merges {health.get('merges')}, "
                        f"generations {health.get('generations')}",
                        flush=True,
                    )
                figures["ingest_s"] = time.monotonic() - started
                hungry.join()
                print(
                    f"four hungry queries during ingest: HTTP {hungry.statuses} after {hungry.seconds:.1f} s, "
                    f"rss peak {hungry.peak_mib:,.0f} MiB meanwhile",
                    flush=True,
                )
                rss.phase = "settle"
                settle_s, _ = settle(server, args.settle_timeout)
                figures["settle_s"] = settle_s
                print(
                    f"settled {settle_s:.0f}s after the last point; peak rss {rss.read('VmHWM'):,.0f} MiB", flush=True
                )
                rss.phase = "read"
                data = dataclasses.replace(
                    slices[0],
                    run_ids=[run_id for s in slices for run_id in s.run_ids][: args.overlay_runs],
                    run_names=names[: args.overlay_runs],
                )
                client = Client(server.http_port)
                times, body, _ = client.timed(
                    args.repeat, "/api/scalars", runs=",".join(data.run_ids), tag=TAG, x="step", width=1000
                )
                client.close()
                figures["overlay_ms"] = statistics.median(times)
                wrong = check_overlay(body, data)
                peak = rss.read("VmHWM")
            figures.update({f"{phase}_rss_mib": mib for phase, mib in rss.peaks.items() if phase != "start"})
        (counted,) = server.sql("SELECT count(*) FROM scalars")[0]

    expected = runs * args.steps
    for problem in wrong[:5]:
        print(f"WRONG overlay: {problem}")
    overlay = f"overlay of {len(data.run_ids)} runs {figures['overlay_ms']:.1f} ms"
    print(f"counted {counted:,} points of {expected:,} logged; {overlay}")
    figures["peak_rss_mib"] = peak
    figures["load_after"] = os.getloadavg()[0]  # other work on the machine slows the reads (overlay_ms)
    missed = [name for name, goal in GOALS.items() if figures[name] > goal]
    emit(
        "soak",
        peak,
        "MiB",
        points=expected,
        runs=runs,
        steps=args.steps,
        memory_limit=args.memory_limit,
        count_ok=counted == expected,
        hungry_sql_statuses=hungry.statuses,
        hungry_sql_s=hungry.seconds,
        hungry_sql_rss_mib=hungry.peak_mib,
        overlay_ok=not wrong,
        goals_missed=missed,
        **figures,
    )
    return 0 if counted == expected and not wrong else 1


if __name__ == "__main__":
    raise SystemExit(main())
