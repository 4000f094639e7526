"""What the HTTP app needs from the service, and nothing more.

The app reads through these few seams instead of holding the whole server: the server (the one
composition point, runstream_service.server) builds an `AppDeps` from its reader, writer and compactor,
and a unit test builds one from fakes, with no DuckDB, threads or gRPC behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import duckdb
import numpy as np

from runstream_service.auth import TokenTable
from runstream_service.store import queries
from runstream_service.store.downsample import Downsampled

T = TypeVar("T")


class Reader(Protocol):
    """Runs a read on a DuckDB cursor away from the event loop (runstream_service.store.reader)."""

    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T: ...


class ChangeFeed(Protocol):
    """Which runs received data: a commit counter, and the runs committed to since a given count."""

    @property
    def commit_number(self) -> int: ...

    def runs_changed_since(self, commit_number: int) -> list[str]: ...


class RunReads(Protocol):
    """The projects, runs, tags, scalar series, one series' points, runs grouped by config and each series'
    last value that the page reads, on a cursor: store/queries.py's functions (this server's file), or a lake server's
    store/lake_queries.LakeReads (the whole lake)."""

    def list_projects(self, cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]: ...

    def list_runs(
        self, cur: duckdb.DuckDBPyConnection, project: str | None, text: str | None, config: dict[str, str]
    ) -> list[dict[str, Any]]: ...

    def list_tags(self, cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, list[str]]: ...

    def scalar_series(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_ids: list[str],
        tag: str,
        x_axis: str,
        x_min: float | None,
        x_max: float | None,
        width: int,
    ) -> list[tuple[str, Downsampled]]: ...

    def scalar_points(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_id: str,
        tag: str,
        x_min: float | None,
        x_max: float | None,
        limit: int,
    ) -> dict[str, np.ndarray]: ...

    def scalar_groups(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_ids: list[str],
        tag: str,
        key: str,
        x_axis: str,
        x_min: float | None,
        x_max: float | None,
        width: int,
    ) -> list[dict[str, Any]]: ...

    def last_values(
        self, cur: duckdb.DuckDBPyConnection, run_ids: list[str]
    ) -> list[tuple[str, str, int, float | None]]: ...


class VisdomReads(Protocol):
    """The Visdom view's reads (runstream_service.visdom.views.ViewReads); shapes in visdom_api.py."""

    async def envs(self) -> list[dict[str, Any]]: ...

    async def env(self, env: str, width: int) -> dict[str, Any]: ...

    async def window(self, env: str, win: str, width: int) -> dict[str, Any]: ...

    @property
    def commit_number(self) -> int: ...

    def windows_changed_since(self, commit_number: int) -> list[dict[str, str | None]]: ...


class ProjectorReads(Protocol):
    """The Projector tab's reads and jobs (runstream_service.projector.service.Projector); shapes in
    projector_api.py."""

    async def embeddings(self) -> list[dict[str, Any]]: ...

    async def metadata(self, run_id: str, tag: str, step: int) -> dict[str, Any]: ...

    async def start(self, run_id: str, tag: str, step: int, request: Any) -> dict[str, Any]: ...

    def job(self, job_id: str) -> dict[str, Any]: ...

    def result(self, job_id: str) -> tuple[bytes, dict[str, Any]]: ...

    def cancel(self, job_id: str) -> dict[str, Any]: ...

    async def neighbours(self, run_id: str, tag: str, step: int, index: int, k: int, metric: str) -> dict[str, Any]: ...

    async def images(self, run_id: str, tag: str, step: int, idx: list[int]) -> dict[int, bytes]: ...


class RunActions(Protocol):
    """Changes to runs (runstream_service.run_actions.RunActions); shapes in runs_api.py."""

    def project_of(self, run_id: str) -> str: ...

    async def delete(self, run_id: str, deleted_by: str) -> dict[str, Any]: ...

    async def rename(self, run_id: str, name: str) -> None: ...

    async def label(self, run_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Health:
    """The server's counters at one moment; /healthz and /metrics both render one of these."""

    points_committed: int
    batches_committed: int
    batches_duplicate: int
    batches_rejected: int
    queued_points: int
    uncompacted_points: int
    compactions: int
    merges: int
    generations: int
    compacting: bool
    compaction_deferred: int
    compaction_seconds: float
    duckdb_memory_limit: str
    commits: int
    commit_seconds_sum: float
    # (upper bound in seconds, commits in that bucket alone), in ascending order of the bounds
    commit_seconds_buckets: tuple[tuple[float, int], ...]
    # The retention rules and what applying them did (runstream_service.retention_job); None: not reported
    retention: dict[str, Any] | None = None


@dataclass(frozen=True)
class AppDeps:
    """Everything `make_app` takes: reads, a health snapshot, the change feed, settings and tokens."""

    reader: Reader
    health: Callable[[], Health]
    changes: ChangeFeed
    sql_timeout: float
    tokens: TokenTable | None  # None: no authentication
    visdom: VisdomReads | None = None  # None: no Visdom view (its routes answer 404)
    projector: ProjectorReads | None = None  # None: no Projector (its routes answer 404)
    run_actions: RunActions | None = None  # None: runs cannot be changed (those routes answer 404)
    sql_max_bytes: int = 2 << 30  # the byte cap of an Arrow answer of POST /api/sql (--sql-max-bytes)
    reads: RunReads = queries  # runs, tags and scalar series: the server's file (a lake server: the lake)
