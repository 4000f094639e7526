"""Test support: a real `runstream serve` process on ephemeral loopback ports, with a real DuckDB file."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`runstream serve` in a subprocess; `sql()` reads its database after `stop()`."""

    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start (or restart, on the same ports and data) and wait until /healthz answers."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runstream_service",
                "serve",
                "--data",
                str(self.data_dir),
                "--grpc",
                self.address,
                "--http",
                f"127.0.0.1:{self.http_port}",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
        raise TimeoutError(f"server did not become healthy in {timeout}s:\n{self.log()}")

    @property
    def http_url(self) -> str:
        scheme = "https" if "--tls-cert" in self.extra_args else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def health(self) -> dict[str, Any]:
        # Over TLS (a test's self-signed certificate) this readiness probe does not verify it.
        context = ssl._create_unverified_context() if self.http_url.startswith("https") else None
        with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=2, context=context) as reply:
            return dict(json.load(reply))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Query the database file; the server must be stopped (DuckDB allows one writing process)."""
        assert self.process is None or self.process.poll() is not None, "stop() the server first"
        con = duckdb.connect(str(self.data_dir / "runstream.duckdb"), read_only=True)
        try:
            return con.execute(query, params or []).fetchall()
        finally:
            con.close()
