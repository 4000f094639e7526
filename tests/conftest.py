from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import ServerProcess


@pytest.fixture(autouse=True)
def _spool_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SDK spools (server away, offline runs) go to the test's own directory, not the working directory."""
    monkeypatch.setenv("RUNSTREAM_DIR", str(tmp_path / "spool"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server on loopback with its own DuckDB file; stopped (drained) at the end."""
    process = ServerProcess(tmp_path / "data").start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop()
