"""A server's lake side, composed: the lake attached, its schema, the outbox under the writer, the mover."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import duckdb

from runstream_service.store import lake
from runstream_service.store.lake_mover import Mover
from runstream_service.store.lake_store import LakeRun, LakeStore
from runstream_service.store.writer import StoreWriter


def attach(con: duckdb.DuckDBPyConnection, writer: StoreWriter, config: lake.LakeConfig, grpc: str) -> Mover:
    """Attach the lake on `con`, put the outbox under `writer`'s store, and return the (unstarted) mover."""
    lake.attach(con, config)
    lake.create_schema(con)
    # The writer made its FileStore; a lake server's is that store with the outbox written in each of its
    # transactions (store/lake_store.py). Before the writer thread starts, so only it ever sees the wrapper.
    store = LakeStore(writer._store, con)
    writer._store = store

    def publish(runs: Mapping[str, LakeRun]) -> None:
        store.lake_runs = runs  # one assignment: the writer thread and the event loop see old or new

    return Mover(con, config, server=f"{socket.gethostname()}/{grpc}", on_runs=publish)
