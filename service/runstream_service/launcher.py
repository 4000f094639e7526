"""`runstream serve` as a child process on free loopback ports: start, wait until healthy, stop.

Tests, benchmarks and `runstream import-tensorboard --data DIR` all need a real server they own for a
while. They share this one launcher, so that they start it the same way (the same command, ports
chosen before the start and kept across restarts, the same readiness check: /healthz answers) and
stop it the same way (SIGTERM: the server drains and commits what it acknowledged, then exits 0).

Later server flags need no change here: callers pass them as `extra_args`, which come after the
launcher's own `--data`, `--grpc` and `--http` (argparse keeps the last value, so they may override).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

MODULE_ARGS = ("-m", "runstream_service")


class ServerStartError(RuntimeError):
    """The server exited, or did not answer /healthz in time; the message ends with its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (another process may take it before it is used)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """One `runstream serve --data DIR` child on 127.0.0.1, its two ports chosen once at creation.

    `python_args` come between the interpreter and `serve` (default `-m runstream_service`; a
    benchmark may put `-m cProfile -o FILE` first). Its output goes to `log_path` (appended, so that
    restarts add to it), or to an anonymous temporary file; `log()` reads either back.
    """

    def __init__(
        self,
        data_dir: Path,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        python_args: Sequence[str] = MODULE_ARGS,
        visdom: bool = False,
        own_session: bool = False,
    ) -> None:
        self.data_dir = data_dir
        # In its own session, a terminal's Ctrl-C reaches only its parent, which then stops it in order
        # (import-tensorboard --data DIR --follow marks its runs finished first).
        self.own_session = own_session
        self.extra_args = tuple(extra_args)
        self.log_path = log_path
        self.python_args = tuple(python_args)
        self.grpc_port = free_port()
        self.http_port = free_port()
        # Our own servers leave Visdom's default port (8097) alone unless a test asks for a Visdom port.
        self.visdom_port: int | None = free_port() if visdom else None
        self.process: subprocess.Popen[bytes] | None = None
        self._anonymous_log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        """The gRPC address, host:port."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        scheme = "https" if "--tls-cert" in self.extra_args else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            *self.python_args,
            "serve",
            "--data",
            str(self.data_dir),
            "--grpc",
            self.address,
            "--http",
            f"127.0.0.1:{self.http_port}",
            "--visdom",
            "off" if self.visdom_port is None else f"127.0.0.1:{self.visdom_port}",
            *self.extra_args,
        ]

    def start(self, timeout: float = 30.0) -> Self:
        """Start (or start again, on the same ports and data) and return once /healthz answers."""
        if self.running:  # a second process would find the ports answering and leak the first
            raise RuntimeError(f"the server on {self.address} is running already; stop() it first")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
                self.process = subprocess.Popen(
                    self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=self.own_session
                )
        else:
            if self._anonymous_log is None:
                self._anonymous_log = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                self.command(),
                stdout=self._anonymous_log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=self.own_session,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"`runstream serve --data {self.data_dir}` exited with {self.process.returncode}:\n"
                    + self.log()[-4000:]
                )
            try:
                self.health()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop(signal.SIGKILL)
                    raise ServerStartError(
                        f"`runstream serve --data {self.data_dir}` did not answer /healthz within {timeout:g} s:\n"
                        + self.log()[-4000:]
                    ) from None
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> dict[str, Any]:
        """GET /healthz; raises OSError while the server does not answer."""
        # Over TLS (a test's self-signed certificate) this probe of our own child does not verify it.
        context = ssl._create_unverified_context() if self.http_url.startswith("https") else None
        with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=5, context=context) as reply:
            return dict(json.load(reply))

    def log(self) -> str:
        """Everything the server printed so far (across restarts)."""
        if self.log_path is not None:
            return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if self._anonymous_log is None:
            return ""
        fd = self._anonymous_log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")  # leaves the offset alone

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120.0) -> int:
        """Send `sig` (SIGTERM: drain and commit) and wait for the exit; returns the exit code.

        A server that outlives `timeout` after SIGTERM is killed, and subprocess.TimeoutExpired raised."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        """SIGKILL: no drain, no checkpoint; the next start() replays DuckDB's write-ahead log."""
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        """Kill the server if it still runs and drop an anonymous log."""
        if self.running:
            self.kill()
        if self._anonymous_log is not None:
            self._anonymous_log.close()
            self._anonymous_log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self.close()
