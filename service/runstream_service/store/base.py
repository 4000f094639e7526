"""The store behind a narrow interface: what the writer thread asks of whatever holds the data.

The writer thread (store/writer.py) keeps the queue, the grouping of jobs into commits and the
acknowledgements; a Store keeps the data. Today that is one DuckDB file (store/file.py); a
DuckLake catalog can be added beside it by implementing the same few methods, and both can
build their rows with store/tables.py.

Run metadata is published as an immutable RunsSnapshot, replaced whole after every commit that
changes it: the gRPC handlers on the event loop read it without a lock, while only the writer
thread makes new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import duckdb

from runstream_service.errors import NotFound
from runstream_service.validate import DecodedBatch


@dataclass(frozen=True)
class OpenRun:
    run_id: str
    project: str
    name: str
    config_json: str
    rank: int
    world_size: int
    host: str
    start_time: float


@dataclass(frozen=True)
class FinishRun:
    run_id: str
    rank: int
    status: str
    end_time: float


@dataclass(frozen=True)
class Transaction:
    """A write that is not a batch of points (the Visdom side's): `work(con)` runs on the writer thread
    inside one transaction, and its result completes the caller's future once that transaction has
    committed. `work` must only use `con`, and must not BEGIN or COMMIT itself; it may raise, and
    then nothing it wrote is kept and the caller's future gets the error.
    """

    work: Callable[[duckdb.DuckDBPyConnection], Any]
    on_rollback: Callable[[], None] | None = None  # on the writer thread, when the transaction failed
    # The same write as ONE statement, when it can be (e.g. an append: one INSERT): tried first, outside
    # BEGIN ... COMMIT, so DuckDB commits that statement by itself, as atomically. It returns
    # NEEDS_TRANSACTION, having written nothing, when the job needs more than one statement; then `work`
    # runs. Measured: a Visdom append took 4.4 ms end to end with BEGIN/INSERT/COMMIT, 3.2 ms so.
    single: Callable[[duckdb.DuckDBPyConnection], Any] | None = None
    # Runs this job deletes (store/lifecycle.py): once it has committed, the store drops them from its
    # caches and snapshot, on the writer thread, before any later batch is looked at.
    forget_runs: tuple[str, ...] = ()
    # Runs whose name or labels this job changes (store/lifecycle.py): a lake server copies them to the lake.
    labels_of: tuple[str, ...] = ()


T = TypeVar("T")


class Reads(Protocol):
    """Runs a read on a DuckDB cursor of committed data, away from the event loop and the writer thread
    (store/reader.py's StoreReader)."""

    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T: ...


NEEDS_TRANSACTION = object()  # what Transaction.single returns when the job is more than one statement


class UnknownRun(NotFound):
    """A run that was never opened (OpenRun) on this store."""


class RunDeleted(UnknownRun):
    """A run that was deleted (store/lifecycle.py): its id is refused from then on."""


@dataclass(frozen=True)
class RunsSnapshot:
    """The runs the store holds, each with its project (for `write:PROJECT` checks), as committed.

    Never changed once made: `with_project` returns a new snapshot, which the writer thread
    publishes by replacing its reference (one atomic assignment), so readers on other threads
    see either the old runs or the new ones, never a dict in the middle of a change.
    """

    projects: Mapping[str, str]
    deleted: frozenset[str] = frozenset()  # ids of deleted runs: refused, with a message that says so

    @staticmethod
    def of(projects: Mapping[str, str], deleted: frozenset[str] = frozenset()) -> RunsSnapshot:
        return RunsSnapshot(MappingProxyType(dict(projects)), deleted)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self.projects

    def __iter__(self) -> Iterator[str]:
        return iter(self.projects)

    def __len__(self) -> int:
        return len(self.projects)

    def project_of(self, run_id: str) -> str | None:
        """The run's project, or None for a run the store does not hold."""
        return self.projects.get(run_id)

    def with_project(self, run_id: str, project: str) -> RunsSnapshot:
        return RunsSnapshot.of({**self.projects, run_id: project}, self.deleted)

    def without(self, run_ids: tuple[str, ...]) -> RunsSnapshot:
        """The snapshot once `run_ids` were deleted."""
        kept = {run: project for run, project in self.projects.items() if run not in run_ids}
        return RunsSnapshot.of(kept, self.deleted | frozenset(run_ids))


class Store(Protocol):
    """What the writer thread needs of a store. Only the writer thread calls these."""

    @property
    def runs(self) -> RunsSnapshot:
        """The committed runs; safe to read from any thread (a new snapshot after each change)."""
        ...

    def committed_seq(self, writer_id: str) -> int:
        """The highest seq of `writer_id` committed so far (0 for a writer never seen)."""
        ...

    def append(self, batches: Sequence[DecodedBatch], progress: Mapping[str, int]) -> None:
        """Append the batches' points and record each writer's new highest seq, in one transaction.

        On any error nothing of it is kept (the transaction is rolled back), and the error is raised.
        """
        ...

    def open_run(self, request: OpenRun) -> bool:
        """Create the run (True) or join it (False), in its own transaction; rank 0's name and config win."""
        ...

    def finish_run(self, request: FinishRun) -> None:
        """Record a rank's end (and the run's, for rank 0); raise UnknownRun for a run not held."""
        ...

    def transact(self, job: Transaction) -> Any:
        """Run `job` (its single statement, else its work in one transaction) and commit it; raise if it
        raises, having kept nothing of it."""
        ...

    def close(self) -> None:
        """Make what was committed durable without the write-ahead log (at shutdown)."""
        ...
