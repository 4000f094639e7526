"""The Projector's jobs and worker processes, over a fake of the store's embedding reads.

Real worker processes (spawned), real files in a temporary cache folder; only the store is faked.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from runstream_service.errors import BadRequest, NotFound
from runstream_service.projector import compute
from runstream_service.projector.requests import projection_request
from runstream_service.projector.service import Projector

T = TypeVar("T")
GiB = 1 << 30


@dataclass
class Loaded:
    vectors: np.ndarray
    metadata: list[dict[str, Any]]
    columns: list[str]
    has_images: bool


class FakeLoader:
    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.loads = 0

    def list_embeddings(self, cur: Any) -> list[dict[str, Any]]:
        n, d = self.vectors.shape
        return [{"run_id": "r", "tag": "emb", "step": 0, "rows": n, "dims": d, "complete": True}]

    def load_embedding(self, cur: Any, run_id: str, tag: str, step: int) -> Loaded:
        if (run_id, tag, step) != ("r", "emb", 0):
            raise NotFound("no such embedding")
        self.loads += 1
        meta = [{"label": str(i % 10)} for i in range(len(self.vectors))]
        return Loaded(self.vectors, meta, ["label"], True)

    def load_images(self, cur: Any, run_id: str, tag: str, step: int, idx: list[int]) -> dict[int, bytes]:
        return {i: b"png%d" % i for i in idx}


class InlineReader:
    async def run(self, read: Callable[[Any], T]) -> T:
        return read(None)


def vectors(n: int = 3000, d: int = 32) -> np.ndarray:
    rng = np.random.default_rng(1)
    centers = rng.normal(0, 5, (6, d))
    return (centers[rng.integers(0, 6, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)


async def wait_done(projector: Projector, job_id: str, timeout: float = 120) -> dict[str, Any]:
    for _ in range(int(timeout * 20)):
        job = projector.job(job_id)
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {projector.job(job_id)}")


def test_pca_neighbours_metadata_and_cache(tmp_path: Path) -> None:
    x = vectors()
    loader = FakeLoader(x)

    async def scenario() -> None:
        projector = Projector(InlineReader(), loader, tmp_path, 2 * GiB, GiB)
        try:
            assert (await projector.embeddings())[0]["rows"] == 3000
            job = await projector.start("r", "emb", 0, projection_request({"method": "pca"}))
            done = await wait_done(projector, job["job"])
            assert done["state"] == "done" and done["dims"] == 3
            body, info = projector.result(job["job"])
            coords = np.frombuffer(body, dtype="<f4").reshape(3000, 3)
            np.testing.assert_allclose(coords, compute.pca(x, 3).coords, rtol=1e-4, atol=1e-4)
            assert info["variance_explained"] == pytest.approx(compute.pca(x, 3).variance_explained)

            again = await projector.start("r", "emb", 0, projection_request({"method": "pca"}))
            assert again["state"] == "done" and again["message"] == "cached"
            assert projector.result(again["job"])[0] == body

            found = await projector.neighbours("r", "emb", 0, 5, 10, "cosine")
            expected = compute.Neighbours(x).query(5, 10, "cosine")[0]
            assert found["indices"].tolist() == expected.tolist()
            assert loader.loads == 1  # opened once, then remembered

            meta = await projector.metadata("r", "emb", 0)
            assert meta["columns"] == ["label"] and meta["values"]["label"][:3] == ["0", "1", "2"]
            assert await projector.images("r", "emb", 0, [1, 2]) == {1: b"png1", 2: b"png2"}

            with pytest.raises(BadRequest, match="'index' must be between 0 and 2999"):
                await projector.neighbours("r", "emb", 0, 3000, 10, "cosine")
            with pytest.raises(NotFound):
                await projector.open("r", "other", 0)
            with pytest.raises(NotFound, match="no projection job"):
                projector.job("nope")
        finally:
            projector.close()

    asyncio.run(scenario())


@pytest.mark.skipif(importlib.util.find_spec("openTSNE") is None, reason="needs the projector extra (openTSNE)")
def test_tsne_reports_progress_is_cached_and_cancel_kills(tmp_path: Path) -> None:
    async def scenario() -> None:
        projector = Projector(InlineReader(), FakeLoader(vectors(1000, 16)), tmp_path, 4 * GiB, GiB)
        try:
            request = projection_request({"method": "tsne", "iterations": 100, "seed": 7})
            job = await projector.start("r", "emb", 0, request)
            done = await wait_done(projector, job["job"])
            assert done["state"] == "done", done
            first = projector.result(job["job"])[0]
            assert len(first) == 1000 * 2 * 4
            assert (await projector.start("r", "emb", 0, request))["message"] == "cached"

            long = await projector.start("r", "emb", 0, projection_request({"method": "tsne", "iterations": 5000}))
            for _ in range(600):
                if projector.job(long["job"])["progress"] > 0.1:
                    break
                await asyncio.sleep(0.05)
            assert projector.job(long["job"])["state"] == "running"
            projector.cancel(long["job"])
            cancelled = await wait_done(projector, long["job"], timeout=10)
            assert cancelled["state"] == "cancelled"
            # the heavy worker starts again for the next job
            again = await projector.start("r", "emb", 0, projection_request({"method": "tsne", "iterations": 50}))
            assert (await wait_done(projector, again["job"]))["state"] == "done"
        finally:
            projector.close()

    asyncio.run(scenario())


def test_the_folder_is_held_under_its_bound_without_losing_what_is_in_use(tmp_path: Path) -> None:
    async def scenario() -> None:
        projector = Projector(InlineReader(), FakeLoader(vectors()), tmp_path, 2 * GiB, cache_bytes=1)
        try:
            first = await projector.start("r", "emb", 0, projection_request({"method": "pca", "dims": 3}))
            assert (await wait_done(projector, first["job"]))["state"] == "done"

            def folder() -> tuple[list[str], list[str]]:  # (vectors, results)
                names = sorted(p.name for p in tmp_path.glob("*.npy"))
                return [n for n in names if n.startswith("data-")], [n for n in names if not n.startswith("data-")]

            vectors_file, results = folder()
            assert len(vectors_file) == 1 and len(results) == 1  # the open vectors, the result just written
            second = await projector.start("r", "emb", 0, projection_request({"method": "pca", "dims": 2}))
            assert (await wait_done(projector, second["job"]))["state"] == "done"
            now_vectors, now_results = folder()
            assert now_vectors == vectors_file and len(now_results) == 1 and now_results != results
            again = await projector.start("r", "emb", 0, projection_request({"method": "pca", "dims": 3}))
            assert (await wait_done(projector, again["job"]))["message"] == "done"  # computed again, not cached
        finally:
            projector.close()

    asyncio.run(scenario())
