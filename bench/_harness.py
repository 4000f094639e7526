"""Shared helpers for the benchmarks: a `runstream serve` subprocess (the shared launcher), timing, the final JSON line.

Benchmarks import this as `from _harness import ...`; run them as `python bench/NAME.py` (the
script's folder is on sys.path then).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from runstream_service.launcher import MODULE_ARGS, LocalServer


class Server(LocalServer):
    """The shared `runstream serve` launcher with its data in a temp dir (unless given), for benchmarks.

    Use as a context manager; `stop()` sends SIGTERM (the server drains and commits), after which
    `sql()` can open the database file.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        profile_to: Path | None = None,
        launcher: list[str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="runstream-bench-")
            data_dir = Path(self._tmp.name) / "data"
        python_args = list(launcher or MODULE_ARGS)  # or a script that wraps the CLI
        if profile_to is not None:  # cProfile the whole server; written at exit (after SIGTERM)
            python_args = ["-m", "cProfile", "-o", str(profile_to), *python_args]
        super().__init__(data_dir, extra_args, log_path=data_dir.parent / "server.log", python_args=python_args)
        self.profile_to = profile_to

    @property
    def database(self) -> Path:
        return self.data_dir / "runstream.duckdb"

    def points_committed(self) -> int:
        return int(self.health()["points_committed"])

    def wait_committed(self, points: int, timeout: float = 600.0, poll: float = 0.02) -> float:
        """Poll /healthz until `points` are committed; return the monotonic time when seen."""
        deadline = time.monotonic() + timeout
        while True:
            if self.points_committed() >= points:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.points_committed()} of {points} points committed in {timeout}s")
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server died:\n{self.log()}")
            time.sleep(poll)

    def restart(self, timeout: float = 60.0) -> Server:
        """Start a new server process on the same ports and data directory."""
        self.kill()
        return self.start(timeout)

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Query the database file; the server must be stopped first."""
        import duckdb

        assert self.process is None or self.process.poll() is not None, "stop() the server first"
        con = duckdb.connect(str(self.database), read_only=True)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    def cleanup(self) -> None:
        self.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self.cleanup()


def time_call(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` takes, with the garbage collector off (as timeit does)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median seconds of `repeat` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(time_call(fn) for _ in range(repeat))


def per_call_times(fn: Callable[[int], object], calls: int, warmup: int = 3) -> list[float]:
    """Seconds of each of `calls` calls `fn(i)` (i = 0..calls-1), after `warmup` untimed calls."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return times


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def code_version() -> str:
    """The commit measured, with a hash of uncommitted changes to the product code if any."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "diff", "HEAD", "--", "sdk", "service", "dashboards", "proto"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty.{hashlib.sha1(diff).hexdigest()[:8]}" if diff else head


def emit(name: str, value: float, unit: str, ratio: float | None = None, **extra: Any) -> None:
    """Print the benchmark's final line: one JSON object."""
    result: dict[str, Any] = {"name": name, "value": _round(value), "unit": unit}
    if ratio is not None:
        result["ratio"] = _round(ratio)
    result.update({k: _round(v) if isinstance(v, float) else v for k, v in extra.items()})
    result["code"] = code_version()
    print(json.dumps(result), flush=True)


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def settle(server: Server, timeout: float, quiet: float = 1.5) -> tuple[float, bool]:
    """Wait until the server has compacted every point and is doing no merge either, for `quiet`
    seconds on end: (seconds waited, whether /healthz reports "uncompacted_points" at all)."""
    started = time.monotonic()
    calm_since: float | None = None
    last: tuple[Any, ...] = ()
    while True:
        health = server.health()
        if "uncompacted_points" not in health:
            return 0.0, False
        now = time.monotonic()
        state = tuple(health.get(k) for k in ("uncompacted_points", "compactions", "merges", "generations"))
        if health["uncompacted_points"] == 0 and not health.get("compacting") and state == last:
            calm_since = calm_since or now
            if now - calm_since >= quiet:
                return calm_since - started, True
        else:
            calm_since = None
        last = state
        if now - started > timeout:
            raise TimeoutError(f"not settled after {timeout:.0f}s: {health}")
        time.sleep(0.1)
