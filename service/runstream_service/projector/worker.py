"""The Projector's worker process: projections and neighbour searches away from the ingest server.

A worker is started by jobs.WorkerProcess with multiprocessing's "spawn" (never fork: the server has
threads), lowers its priority (nice 10, so the ingest writer's thread wins the core when both want it)
and bounds its own memory with RLIMIT_DATA: private memory beyond the bound fails with MemoryError,
reported to the caller, instead of taking the server's memory. RLIMIT_DATA rather than RLIMIT_AS: the
JIT of UMAP's numba and the thread stacks reserve address space they never use.

The data never travels through the pipe: the server writes an embedding's vectors once to an .npy file
named by their hash, and the worker loads it. Requests and replies are small tuples:

    ("open", data_hash, path)                         -> {"rows", "dims"}  (kept for neighbour queries)
    ("pca", data_hash, path, dims)                    -> {"coords", "variance_explained"}
    ("knn", data_hash, path, index, k, metric)        -> {"indices", "distances"}
    ("tsne" | "umap", data_hash, path, params: dict)  -> {"coords"}, after ("progress", fraction, text)s

Each reply is ("ok", value) or ("error", kind, message) with kind "memory", "missing" or "bad".
"""

from __future__ import annotations

import os
import resource
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from runstream_service.projector import compute

NICE = 10


def default_memory_bytes() -> int:
    """Half the machine's physical memory: a 1M x 1,024 embedding (4 GiB) fits on a 16 GiB machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def bound_memory(limit_bytes: int) -> None:
    """Cap this process's private memory (heap and anonymous maps) at `limit_bytes`."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


class _Opened:
    """The last embedding opened: its vectors and norms, so that the first neighbour query is fast."""

    def __init__(self) -> None:
        self.data_hash = ""
        self.neighbours: compute.Neighbours | None = None

    def get(self, data_hash: str, path: str) -> compute.Neighbours:
        if self.neighbours is None or self.data_hash != data_hash:
            self.neighbours = None  # free the previous one before loading the next
            self.neighbours = compute.Neighbours(np.load(path))
            self.data_hash = data_hash
        return self.neighbours


def handle(request: tuple[Any, ...], opened: _Opened, conn: Connection) -> Any:
    kind, data_hash, path = request[0], request[1], request[2]
    if kind == "open":
        x = opened.get(data_hash, path).x
        return {"rows": int(x.shape[0]), "dims": int(x.shape[1])}
    if kind == "pca":
        result = compute.pca(opened.get(data_hash, path).x, int(request[3]))
        return {"coords": result.coords, "variance_explained": result.variance_explained}
    if kind == "knn":
        indices, distances = opened.get(data_hash, path).query(int(request[3]), int(request[4]), str(request[5]))
        return {"indices": indices, "distances": distances}

    def progress(fraction: float, text: str) -> None:
        conn.send(("progress", fraction, text))

    params = dict(request[3])
    x = np.load(path, mmap_mode="r")
    if kind == "tsne":
        coords = compute.tsne(x, params["dims"], params["perplexity"], params["iterations"], params["seed"], progress)
        return {"coords": coords}
    if kind == "umap":
        coords = compute.umap(
            np.asarray(x), params["dims"], params["neighbours"], params["min_dist"], params["seed"], progress
        )
        return {"coords": coords}
    raise ValueError(f"unknown request {kind!r}")


def main(conn: Connection, memory_bytes: int) -> None:
    """Answer requests from `conn` until it closes."""
    os.nice(NICE)
    bound_memory(memory_bytes)
    opened = _Opened()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", handle(request, opened, conn)))
        except MemoryError:
            opened.neighbours = None
            limit = memory_bytes / 2**30
            conn.send(("error", "memory", f"the projector's worker ran out of its {limit:.1f} GiB memory bound"))
        except compute.MissingLibrary as exc:
            conn.send(("error", "missing", str(exc)))
        except (ValueError, IndexError, OSError) as exc:
            conn.send(("error", "bad", str(exc)))
