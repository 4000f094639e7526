"""Flags of `runstream serve` that shape the server: DuckDB's memory limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import ServerProcess, free_port


def test_the_memory_limit_is_duckdbs(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", ("--memory-limit", "300MB")).start()
    try:
        assert server.health()["duckdb_memory_limit"] == "286.1 MiB"  # 300 MB as DuckDB prints it
    finally:
        server.stop()


def test_a_bad_memory_limit_is_refused_before_anything_starts(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "runstream_service", "serve", "--data", str(tmp_path / "d")]
    command += ["--grpc", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}", "--memory-limit", "lots"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--memory-limit 'lots'" in result.stderr and "4GB" in result.stderr
    assert not (tmp_path / "d").exists()
