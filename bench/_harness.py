"""Shared helpers for the benchmarks: a `runstream serve` subprocess, timing, the final JSON line.

Benchmarks import this as `from _harness import ...`; run them as `python bench/NAME.py` (the
script's folder is on sys.path then).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m runstream_service serve` on free loopback ports, with its data in a temp dir.

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
        self.data_dir = data_dir
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.log_path = data_dir.parent / "server.log"
        self.profile_to = profile_to
        self.launcher = launcher or ["-m", "runstream_service"]  # or a script that wraps the CLI
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_args = extra_args

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def database(self) -> Path:
        return self.data_dir / "runstream.duckdb"

    def start(self, timeout: float = 30.0) -> Server:
        command = [sys.executable]
        if self.profile_to is not None:  # cProfile the whole server; written at exit (after SIGTERM)
            command += ["-m", "cProfile", "-o", str(self.profile_to)]
        command += [
            *self.launcher,
            "serve",
            "--data",
            str(self.data_dir),
            "--grpc",
            self.address,
            "--http",
            f"127.0.0.1:{self.http_port}",
            *self.extra_args,
        ]
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"server not healthy within {timeout}s:\n{self.log()}")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=5) as reply:
            return dict(json.load(reply))

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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 120.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no drain, no checkpoint; the next start() replays DuckDB's WAL."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

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
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Server:
        return self.start()

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
