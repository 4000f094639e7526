"""The Projector as the HTTP app sees it (runstream_dashboards.ports.ProjectorReads), over the store.

Opening an embedding (the tab chose run, tag and step) reads it once on a read cursor through
`EmbeddingLoader` (runstream_service.store.embeddings), writes its vectors to `<data hash>.npy` in the
cache folder (once per distinct data) and has the quick worker load them, so that the first neighbour
query after the choice only multiplies. The server keeps the metadata of the last few embeddings opened
(for labels and colours), never their vectors.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb
import numpy as np

from runstream_service.errors import BadRequest, NotFound
from runstream_service.projector import cache
from runstream_service.projector.jobs import Jobs
from runstream_service.projector.requests import ProjectionRequest

T = TypeVar("T")
OPEN_KEPT = 4


class Reader(Protocol):
    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T: ...


class LoadedEmbedding(Protocol):
    @property
    def vectors(self) -> np.ndarray[Any, Any]: ...  # N x D float32, in idx order

    @property
    def metadata(self) -> list[dict[str, Any]]: ...

    @property
    def columns(self) -> list[str]: ...

    @property
    def has_images(self) -> bool: ...


class EmbeddingLoader(Protocol):
    """The store's reads of embeddings (runstream_service.store.embeddings, or a fake in tests)."""

    def list_embeddings(self, cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]: ...

    def load_embedding(self, cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int) -> LoadedEmbedding: ...

    def load_images(
        self, cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int, idx: list[int]
    ) -> dict[int, bytes]: ...


@dataclass(frozen=True)
class Opened:
    run_id: str
    tag: str
    step: int
    rows: int
    dims: int
    data_hash: str
    path: Path
    columns: list[str]
    values: dict[str, list[Any]]  # column -> one value per point
    has_images: bool

    def describe(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "tag": self.tag,
            "step": self.step,
            "rows": self.rows,
            "dims": self.dims,
            "columns": self.columns,
            "has_images": self.has_images,
        }


def data_hash(vectors: np.ndarray[Any, np.dtype[np.float32]]) -> str:
    """Names the data in cache keys: its shape and bytes, hashed."""
    digest = hashlib.blake2b(str(vectors.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(vectors, dtype="<f4").data)
    return digest.hexdigest()


def columnar(metadata: list[dict[str, Any]], columns: list[str]) -> dict[str, list[Any]]:
    return {column: [row.get(column) for row in metadata] for column in columns}


class Projector:
    """Embeddings listed and opened, projections started, followed and cancelled, neighbours, images."""

    def __init__(
        self, reader: Reader, loader: EmbeddingLoader, cache_dir: Path, memory_bytes: int, cache_bytes: int
    ) -> None:
        self.reader = reader
        self.loader = loader
        self.cache_dir = cache_dir
        self.jobs = Jobs(cache_dir, memory_bytes, cache_bytes)
        self._opened: OrderedDict[tuple[str, str, int], Opened] = OrderedDict()
        self._opening: dict[tuple[str, str, int], asyncio.Future[Opened]] = {}

    async def embeddings(self) -> list[dict[str, Any]]:
        return await self.reader.run(self.loader.list_embeddings)

    async def open(self, run_id: str, tag: str, step: int) -> Opened:
        """The embedding, read and handed to the quick worker on first use, then remembered."""
        key = (run_id, tag, step)
        if key in self._opened:
            self._opened.move_to_end(key)
            return self._opened[key]
        if key in self._opening:
            return await asyncio.shield(self._opening[key])
        future: asyncio.Future[Opened] = asyncio.get_running_loop().create_future()
        self._opening[key] = future
        try:
            opened = await self._load(run_id, tag, step)
            future.set_result(opened)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody else must
            raise
        finally:
            del self._opening[key]
        self._opened[key] = opened
        while len(self._opened) > OPEN_KEPT:
            self._opened.popitem(last=False)
        return opened

    async def _load(self, run_id: str, tag: str, step: int) -> Opened:
        loaded = await self.reader.run(lambda cur: self.loader.load_embedding(cur, run_id, tag, step))
        if loaded.vectors.ndim != 2 or loaded.vectors.shape[0] == 0:
            raise NotFound(f"the embedding {tag!r} at step {step} of run {run_id!r} has no points")
        if not getattr(loaded, "complete", True):
            raise BadRequest(
                f"the embedding {tag!r} at step {step} of run {run_id!r} is still arriving "
                f"({len(loaded.vectors)} points so far): open it again once its run has sent it all"
            )
        hashed, path = await asyncio.to_thread(self._write_vectors, loaded.vectors)
        columns = list(loaded.columns)
        values, has_images = columnar(loaded.metadata, columns), loaded.has_images
        del loaded  # the vectors: the worker holds them from now on, not the server
        info = await asyncio.to_thread(self.jobs.quick.call, ("open", hashed, str(path)))
        return Opened(run_id, tag, step, info["rows"], info["dims"], hashed, path, columns, values, has_images)

    def _write_vectors(self, vectors: np.ndarray[Any, np.dtype[np.float32]]) -> tuple[str, Path]:
        hashed = data_hash(vectors)
        path = self.cache_dir / f"data-{hashed}.npy"
        if path.exists():
            cache.touch(path)
            return hashed, path
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".npy.partial")
        with partial.open("wb") as out:
            np.save(out, np.ascontiguousarray(vectors, dtype=np.float32))
        partial.replace(path)
        self.jobs.trim(path, *(opened.path for opened in self._opened.values()))
        return hashed, path

    async def start(self, run_id: str, tag: str, step: int, request: ProjectionRequest) -> dict[str, Any]:
        opened = await self.open(run_id, tag, step)
        if request.method != "pca" and request.dims > 3:
            raise BadRequest("'dims' must be 2 or 3")
        return self.jobs.start(opened.data_hash, opened.path, opened.rows, request).describe()

    def job(self, job_id: str) -> dict[str, Any]:
        return self.jobs.get(job_id).describe()

    def result(self, job_id: str) -> tuple[bytes, dict[str, Any]]:
        """A finished job's coordinates (float32 little-endian, row after row) and its description."""
        job = self.jobs.get(job_id)
        if job.state != "done" or job.coords is None:
            raise BadRequest(f"projection job {job_id} is {job.state}, not done: poll it until its state is done")
        return np.ascontiguousarray(job.coords, dtype="<f4").tobytes(), job.describe()

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.jobs.cancel(job_id).describe()

    async def neighbours(self, run_id: str, tag: str, step: int, index: int, k: int, metric: str) -> dict[str, Any]:
        opened = await self.open(run_id, tag, step)
        if not 0 <= index < opened.rows:
            raise BadRequest(f"'index' must be between 0 and {opened.rows - 1} (got {index})")
        request = ("knn", opened.data_hash, str(opened.path), index, k, metric)
        reply = await asyncio.to_thread(self.jobs.quick.call, request)
        return {"index": index, "metric": metric, "indices": reply["indices"], "distances": reply["distances"]}

    async def metadata(self, run_id: str, tag: str, step: int) -> dict[str, Any]:
        opened = await self.open(run_id, tag, step)
        return opened.describe() | {"values": opened.values}

    async def images(self, run_id: str, tag: str, step: int, idx: list[int]) -> dict[int, bytes]:
        return await self.reader.run(lambda cur: self.loader.load_images(cur, run_id, tag, step, idx))

    def close(self) -> None:
        self.jobs.close()
