"""The server's side of the Projector's workers: worker processes, background jobs, the result cache.

Two worker processes (worker.py), each started on first use: `quick` answers PCA and neighbour queries
and keeps the open embedding's vectors, so a query does not wait for a long t-SNE; `heavy` runs t-SNE and
UMAP one job at a time. Cancelling a running job kills the heavy process (it starts again on the next
job), so cancel takes effect at once whatever the library is doing.

Calls block on a pipe, so they run in threads (asyncio.to_thread); a job's thread updates its `Job`
record, which the HTTP side reads without a lock (the record's fields are replaced, never mutated in
place). Finished coordinates are cached on disk as `<cache key>.npy` (requests.ProjectionRequest:
data, method, parameters and seed), so the same request later answers at once with the same picture.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runstream_service.errors import BadRequest, NotFound, RunstreamError
from runstream_service.projector import cache, worker
from runstream_service.projector.requests import ProjectionRequest

MAX_JOBS_KEPT = 100


class ProjectorUnavailable(RunstreamError):
    """A library the request needs is not installed (HTTP 501); the message says what to install."""

    http_status = 501


class WorkerFailed(RunstreamError):
    """The worker ran out of its memory bound or died; the message says which."""

    http_status = 507


class Cancelled(Exception):
    """The job was cancelled: its worker was killed."""


class WorkerProcess:
    """One worker process: started on first call, one call at a time, killed to cancel."""

    def __init__(self, name: str, memory_bytes: int) -> None:
        self.name = name
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self._killed = False

    def _ensure(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=worker.main, args=(child, self.memory_bytes), name=f"runstream-projector-{self.name}", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent

    def call(self, request: tuple[Any, ...], on_progress: Any = None, on_start: Any = None) -> Any:
        """Send `request`, pass progress to `on_progress(fraction, text)`, return the reply's value.

        `on_start()`, called once this call has the process, may return False to skip (raise Cancelled).
        """
        with self._lock:
            if on_start is not None and not on_start():
                raise Cancelled()
            self._killed = False
            self._ensure()
            try:
                self._conn.send(request)
                while True:
                    reply = self._conn.recv()
                    if reply[0] == "progress":
                        if on_progress is not None:
                            on_progress(reply[1], reply[2])
                        continue
                    break
            except (EOFError, OSError, BrokenPipeError):
                self._process = None
                if self._killed:
                    raise Cancelled() from None
                raise WorkerFailed(f"the projector's {self.name} worker died; see the server's log") from None
        if reply[0] == "ok":
            return reply[1]
        kind, message = reply[1], reply[2]
        if kind == "missing":
            raise ProjectorUnavailable(message)
        if kind == "memory":
            raise WorkerFailed(message + "; try a smaller embedding")
        raise BadRequest(message)

    def kill(self) -> None:
        """Stop whatever the process is doing now: the call waiting on it raises Cancelled."""
        process = self._process
        if process is not None and process.is_alive():
            self._killed = True
            process.kill()

    def close(self) -> None:
        self.kill()
        if self._process is not None:
            self._process.join(5)


@dataclass
class Job:
    id: str
    method: str
    key: str
    rows: int
    estimate_seconds: float
    state: str = "queued"  # queued, running, done, failed, cancelled
    progress: float = 0.0
    message: str = "waiting for the worker"
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    variance_explained: list[float] | None = None
    coords: np.ndarray[Any, np.dtype[np.float32]] | None = None

    def describe(self) -> dict[str, Any]:
        """What the tab shows: state, progress, the estimate and the time taken so far."""
        end = self.finished if self.finished is not None else time.time()
        return {
            "job": self.id,
            "method": self.method,
            "state": self.state,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
            "rows": self.rows,
            "dims": None if self.coords is None else int(self.coords.shape[1]),
            "estimate_seconds": round(self.estimate_seconds, 1),
            "elapsed_seconds": round(end - self.started, 3),
            "variance_explained": self.variance_explained,
        }


class Jobs:
    """Projection jobs over the worker processes, with the on-disk result cache."""

    def __init__(self, cache_dir: Path, memory_bytes: int, cache_bytes: int) -> None:
        self.cache_dir = cache_dir
        self.cache_bytes = cache_bytes  # the folder's bound (cache.py)
        self.in_use: dict[str, Path] = {}  # job id -> the vectors it reads, until it ends
        self.quick = WorkerProcess("quick", memory_bytes)
        self.heavy = WorkerProcess("heavy", memory_bytes)
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._ids = itertools.count(1)
        self._running: Job | None = None

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no projection job {job_id!r} (jobs are kept while the server runs; start it again)")
        return job

    def start(self, data_hash: str, path: Path, rows: int, request: ProjectionRequest) -> Job:
        """A job for `request` over the vectors at `path`; already done when its result is cached."""
        key = request.cache_key(data_hash)
        job = Job(f"j{next(self._ids)}", request.method, key, rows, request.estimate_seconds(rows))
        self._jobs[job.id] = job
        while len(self._jobs) > MAX_JOBS_KEPT:
            self._jobs.popitem(last=False)
        cached = self._cached(key)
        if cached is not None:
            job.coords, job.variance_explained = cached
            job.state, job.progress, job.message, job.finished = "done", 1.0, "cached", time.time()
            return job
        self.in_use[job.id] = path
        asyncio.get_running_loop().create_task(self._run(job, data_hash, path, request))
        return job

    async def _run(self, job: Job, data_hash: str, path: Path, request: ProjectionRequest) -> None:
        def progress(fraction: float, text: str) -> None:
            job.progress, job.message = fraction, text

        try:
            if request.method == "pca":
                job.state, job.message = "running", "PCA"
                reply = await asyncio.to_thread(self.quick.call, ("pca", data_hash, str(path), request.dims))
            else:
                reply = await asyncio.to_thread(self._heavy_call, job, data_hash, path, request, progress)
        except Cancelled:
            job.state, job.message = "cancelled", "cancelled"
        except RunstreamError as exc:
            job.state, job.error, job.message = "failed", str(exc), "failed"
        else:
            if job.state != "cancelled":
                job.variance_explained = reply.get("variance_explained")
                job.coords = reply["coords"]
                await asyncio.to_thread(self._store, job)
                job.state, job.progress, job.message = "done", 1.0, "done"
        job.finished = time.time()
        self.in_use.pop(job.id, None)

    def _heavy_call(
        self, job: Job, data_hash: str, path: Path, request: ProjectionRequest, progress: Any
    ) -> dict[str, Any]:
        """One t-SNE or UMAP on the heavy worker, after the jobs before it; skipped if cancelled meanwhile."""

        def start() -> bool:
            if job.state == "cancelled":
                return False
            self._running = job
            job.state, job.message, job.started = "running", "starting", time.time()
            return True

        try:
            request_tuple = (request.method, data_hash, str(path), dict(request.params))
            return self.heavy.call(request_tuple, progress, start)  # type: ignore[no-any-return]
        finally:
            self._running = None

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state in ("done", "failed", "cancelled"):
            return job
        previous = job.state
        job.state, job.message = "cancelled", "cancelled"
        if previous == "running" and self._running is job:
            self.heavy.kill()
        return job

    def _cached(self, key: str) -> tuple[np.ndarray[Any, np.dtype[np.float32]], list[float] | None] | None:
        coords_path = self.cache_dir / f"{key}.npy"
        if not coords_path.exists():
            return None
        info_path = self.cache_dir / f"{key}.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        cache.touch(coords_path)
        return np.load(coords_path), info.get("variance_explained")

    def _store(self, job: Job) -> None:
        assert job.coords is not None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        (self.cache_dir / f"{job.key}.json").write_text(json.dumps({"variance_explained": job.variance_explained}))
        partial = self.cache_dir / f"{job.key}.npy.partial"
        with partial.open("wb") as out:
            np.save(out, job.coords)
        partial.replace(self.cache_dir / f"{job.key}.npy")
        self.trim(self.cache_dir / f"{job.key}.npy")

    def trim(self, *keep: Path) -> None:
        """The folder back under its bound, keeping `keep` and the vectors of unfinished jobs."""
        cache.trim(self.cache_dir, self.cache_bytes, {*keep, *self.in_use.values()})

    def close(self) -> None:
        self.quick.close()
        self.heavy.close()
