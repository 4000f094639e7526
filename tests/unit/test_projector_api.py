"""The Projector's HTTP API in-process: the real Projector and worker processes over a fake of the
store's embedding reads (tests/unit/test_projector_jobs.py), through aiohttp's test client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient, TestServer
from test_app import HEALTH, FakeChanges, FakeReader
from test_projector_jobs import FakeLoader, InlineReader, vectors

from runstream_dashboards.app import make_app
from runstream_dashboards.ports import AppDeps, Health
from runstream_service.projector import compute
from runstream_service.projector.service import Projector


def app_deps(projector: Projector | None) -> AppDeps:
    def health() -> Health:
        return HEALTH

    return AppDeps(
        reader=FakeReader(), health=health, changes=FakeChanges(), sql_timeout=5.0, tokens=None, projector=projector
    )


def test_projector_api(tmp_path: Path) -> None:
    x = vectors(2000, 24)

    async def scenario() -> None:
        projector = Projector(InlineReader(), FakeLoader(x), tmp_path, 1 << 31, 1 << 30)
        try:
            async with TestClient(TestServer(make_app(app_deps(projector)))) as client:
                listed = await (await client.get("/api/projector/embeddings")).json()
                assert listed["embeddings"][0]["tag"] == "emb"

                opened = await (await client.get("/api/projector/embedding?run=r&tag=emb&step=0")).json()
                assert opened["rows"] == 2000 and opened["dims"] == 24 and opened["columns"] == ["label"]
                assert len(opened["values"]["label"]) == 2000

                reply = await client.post(
                    "/api/projector/projections", json={"run": "r", "tag": "emb", "step": 0, "method": "pca"}
                )
                assert reply.status == 202
                job: dict[str, Any] = await reply.json()
                while job["state"] not in ("done", "failed", "cancelled"):
                    await asyncio.sleep(0.05)
                    job = await (await client.get(f"/api/projector/projections/{job['job']}")).json()
                assert job["state"] == "done" and len(job["variance_explained"]) == 3
                coords = await client.get(f"/api/projector/projections/{job['job']}/coords")
                assert coords.headers["X-Rows"] == "2000" and coords.headers["X-Dims"] == "3"
                got = np.frombuffer(await coords.read(), dtype="<f4").reshape(2000, 3)
                np.testing.assert_allclose(got, compute.pca(x, 3).coords, rtol=1e-4, atol=1e-4)

                near = await (
                    await client.get("/api/projector/neighbours?run=r&tag=emb&step=0&index=3&k=5&metric=euclidean")
                ).json()
                assert near["indices"] == compute.Neighbours(x).query(3, 5, "euclidean")[0].tolist()

                png = await client.get("/api/projector/image?run=r&tag=emb&step=0&idx=4")
                assert png.status == 200 and await png.read() == b"png4"

                async def error(method: str, path: str, **kwargs: Any) -> tuple[int, str]:
                    reply = await client.request(method, path, **kwargs)
                    return reply.status, (await reply.json())["error"]

                status, message = await error(
                    "POST", "/api/projector/projections", json={"run": "r", "tag": "emb", "step": 0, "method": "x"}
                )
                assert status == 400 and "'method' must be one of" in message
                status, message = await error(
                    "POST", "/api/projector/projections", json={"method": "pca", "tag": "emb", "step": 0}
                )
                assert status == 400 and "'run' and 'tag' must be strings" in message
                status, message = await error("GET", "/api/projector/neighbours?run=r&tag=emb&step=0&index=1&metric=l1")
                assert status == 400 and "'metric'" in message
                status, message = await error("GET", "/api/projector/neighbours?run=r&tag=emb&step=0")
                assert status == 400 and "'index'" in message
                status, message = await error("GET", "/api/projector/projections/j999")
                assert status == 404 and "no projection job" in message
                status, message = await error("GET", "/api/projector/embedding?run=r&tag=nope&step=0")
                assert status == 404
        finally:
            projector.close()

    asyncio.run(scenario())


def test_no_projector_answers_404() -> None:
    async def scenario() -> None:
        async with TestClient(TestServer(make_app(app_deps(None)))) as client:
            reply = await client.get("/api/projector/embeddings")
            assert reply.status == 404 and "no Projector" in (await reply.json())["error"]

    asyncio.run(scenario())
