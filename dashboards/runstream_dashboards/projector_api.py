"""The web UI's Projector reads and jobs: embeddings, projections (background jobs), neighbours, images.

`GET /api/projector/embeddings` -> `{"embeddings": [{run_id, tag, step, rows, dims, complete, ...}]}`;
`GET /api/projector/embedding?run=&tag=&step=` opens one (reads it once and hands its vectors to the
projector's worker, so later neighbour queries only compute) -> `{run_id, tag, step, rows, dims,
columns, has_images, values: {column: [one value per point]}}`;
`POST /api/projector/projections` with `{"run", "tag", "step", "method": "pca"|"tsne"|"umap", ...
parameters}` -> 202 and the job `{job, state, progress, message, estimate_seconds, elapsed_seconds, ...}`;
`GET /api/projector/projections/{job}` -> the job; `DELETE` the same path cancels it;
`GET /api/projector/projections/{job}/coords` -> the coordinates as little-endian float32, row after row
(`X-Rows`, `X-Dims` headers; the job's JSON in `X-Job`);
`GET /api/projector/neighbours?run=&tag=&step=&index=&k=10&metric=cosine` -> `{index, metric, indices,
distances}` over the full vectors; `GET /api/projector/image?run=&tag=&step=&idx=` -> one label image (PNG).
"""

from __future__ import annotations

import json

import orjson
from aiohttp import web

from runstream_dashboards import params
from runstream_dashboards.ports import AppDeps, ProjectorReads
from runstream_service.errors import BadRequest, NotFound
from runstream_service.projector.requests import neighbours_request, projection_request

DEPS_KEY: web.AppKey[AppDeps] = web.AppKey("projector_deps")
MAX_STEP = 2**63 - 1


def _projector(request: web.Request) -> ProjectorReads:
    projector = request.app[DEPS_KEY].projector
    if projector is None:
        raise NotFound("this server has no Projector")
    return projector


def _json(payload: object, status: int = 200) -> web.Response:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return web.Response(body=body, status=status, content_type="application/json")


def _which(request: web.Request) -> tuple[str, str, int]:
    step = params.integer(request, "step", -1, 0, MAX_STEP)
    if step < 0:
        raise BadRequest("missing query parameter 'step'")
    return params.required(request, "run"), params.required(request, "tag"), step


async def embeddings(request: web.Request) -> web.Response:
    return _json({"embeddings": await _projector(request).embeddings()})


async def embedding(request: web.Request) -> web.Response:
    return _json(await _projector(request).metadata(*_which(request)))


async def start(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest('the body must be JSON: {"run": ..., "tag": ..., "step": 0, "method": "pca"}') from None
    projection = projection_request(body)
    run_id, tag, step = body.get("run"), body.get("tag"), body.get("step")
    if not isinstance(run_id, str) or not isinstance(tag, str):
        raise BadRequest("'run' and 'tag' must be strings naming the embedding")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise BadRequest("'step' must be a non-negative integer")
    return _json(await _projector(request).start(run_id, tag, step, projection), status=202)


async def job(request: web.Request) -> web.Response:
    return _json(_projector(request).job(request.match_info["job"]))


async def cancel(request: web.Request) -> web.Response:
    return _json(_projector(request).cancel(request.match_info["job"]))


async def coords(request: web.Request) -> web.Response:
    body, info = _projector(request).result(request.match_info["job"])
    headers = {
        "X-Rows": str(info["rows"]),
        "X-Dims": str(info["dims"]),
        "X-Job": orjson.dumps(info).decode(),
        "Cache-Control": "private, max-age=3600",
    }
    return web.Response(body=body, content_type="application/octet-stream", headers=headers)


async def neighbours(request: web.Request) -> web.Response:
    run_id, tag, step = _which(request)
    index = params.integer(request, "index", -1, 0, MAX_STEP)
    if index < 0:
        raise BadRequest("missing query parameter 'index' (the point's row)")
    k, metric = neighbours_request(params.integer(request, "k", 10, 1, 1000), request.query.get("metric", "cosine"))
    return _json(await _projector(request).neighbours(run_id, tag, step, index, k, metric))


async def image(request: web.Request) -> web.Response:
    run_id, tag, step = _which(request)
    idx = params.integer(request, "idx", -1, 0, MAX_STEP)
    if idx < 0:
        raise BadRequest("missing query parameter 'idx' (the point's row)")
    found = await _projector(request).images(run_id, tag, step, [idx])
    if idx not in found:
        raise NotFound(f"point {idx} of embedding {tag!r} at step {step} has no label image")
    return web.Response(body=found[idx], content_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


def setup(app: web.Application, deps: AppDeps) -> None:
    app[DEPS_KEY] = deps
    app.router.add_get("/api/projector/embeddings", embeddings)
    app.router.add_get("/api/projector/embedding", embedding)
    app.router.add_post("/api/projector/projections", start)
    app.router.add_get("/api/projector/projections/{job}", job)
    app.router.add_delete("/api/projector/projections/{job}", cancel)
    app.router.add_get("/api/projector/projections/{job}/coords", coords)
    app.router.add_get("/api/projector/neighbours", neighbours)
    app.router.add_get("/api/projector/image", image)
