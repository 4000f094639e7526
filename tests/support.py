"""Test support: a real `runstream serve` process on ephemeral loopback ports, with a real DuckDB file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from runstream_service.launcher import LocalServer, free_port

__all__ = ["ServerProcess", "free_port"]


class ServerProcess(LocalServer):
    """The shared launcher with the tests' log file beside the data; `sql()` reads the database after `stop()`."""

    def __init__(self, data_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, extra_args, log_path=data_dir.parent / f"{data_dir.name}-server.log")

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Query the database file; the server must be stopped (DuckDB allows one writing process)."""
        assert self.process is None or self.process.poll() is not None, "stop() the server first"
        con = duckdb.connect(str(self.data_dir / "runstream.duckdb"), read_only=True)
        try:
            return con.execute(query, params or []).fetchall()
        finally:
            con.close()
