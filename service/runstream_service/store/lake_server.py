"""A server's lake side, composed: the lake attached, its schema, the outbox under the writer, the mover."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Mapping

import duckdb

from runstream_service.store import lake
from runstream_service.store.base import Store
from runstream_service.store.lake_crashes import LakeCrashes
from runstream_service.store.lake_mover import Mover
from runstream_service.store.lake_retention import Cutoffs
from runstream_service.store.lake_store import LakeRun, LakeStore


def attach(
    con: duckdb.DuckDBPyConnection,
    file_store: Store,
    config: lake.LakeConfig,
    grpc: str,
    crash_after: float,
    alive: Callable[[], Iterable[str]],
    retention: Callable[[list[str], float], Cutoffs] | None = None,
) -> tuple[LakeStore, Mover]:
    """Attach the lake on `con`; the server's store (`file_store` with the outbox written in each of its
    transactions, store/lake_store.py) for its writer, and the (unstarted) mover, which also watches for
    crashed runs across servers (store/lake_crashes.py) with `alive`, the runs this server sees alive, and
    thins old series by `retention`'s cutoffs (store/lake_retention.py)."""
    lake.attach(con, config)
    lake.create_schema(con)
    store = LakeStore(file_store, con)

    def publish(runs: Mapping[str, LakeRun], deleted: frozenset[str]) -> None:
        # one assignment each: the writer thread and the event loop see old or new
        store.lake_deleted = deleted
        store.lake_runs = runs

    server = f"{socket.gethostname()}/{grpc}"
    crashes = LakeCrashes(server, crash_after, alive)
    mover = Mover(
        con,
        config,
        server=server,
        on_runs=publish,
        outboxed=lambda: store.outboxed_points,
        crashes=crashes,
        retention=retention,
    )
    return store, mover


RETRY_SECONDS = 5.0


def admission(mover: Mover, config: lake.LakeConfig) -> Callable[[], tuple[str, float] | None]:
    """The ingest's admission (ingest.py): batches are refused while more than the configured backlog of
    acknowledged points waits to move (the lake unreachable, or slower than ingest)."""

    def admit() -> tuple[str, float] | None:
        waiting = mover.backlog_points
        if waiting <= config.max_backlog_points:
            return None
        why = f" (the last move failed: {mover.last_error})" if mover.last_error else ""
        return (
            f"the lake is behind: {waiting:,} points acknowledged here wait to move, more than "
            f"--lake-max-backlog {config.max_backlog_points:,}{why}; send again later, or to another server",
            RETRY_SECONDS,
        )

    return admit
