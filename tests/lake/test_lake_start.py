"""Two lake servers started at the same moment on an empty catalog both come up (they race to create
DuckLake's schema in PostgreSQL; the loser tries again)."""

from __future__ import annotations

import threading
from pathlib import Path

from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig


def test_two_servers_started_together_on_an_empty_catalog_both_serve(tmp_path: Path, lake_config: LakeConfig) -> None:
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path]
    servers = [LocalServer(tmp_path / name, args) for name in ("a", "b")]
    errors: list[BaseException] = []

    def start(server: LocalServer) -> None:
        try:
            server.start()
        except BaseException as exc:  # reported below, with the server's log
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(server,)) for server in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert all(server.health()["status"] == "ok" for server in servers)
    finally:
        for server in servers:
            server.close()
