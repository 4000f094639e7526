"""The dashboard's HTTP app: the JSON API of README "HTTP API" and the web UI's static files.

Handlers parse parameters, run a query from runstream_service.store.queries on a read
cursor (never on the event loop), and shape JSON. Errors go through errors.json_errors.
The app holds only an `AppDeps` (ports.py), never the server: runstream_service.server builds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from runstream_dashboards import (
    auth,
    curves_api,
    hparams_api,
    media_api,
    origin,
    params,
    projector_api,
    runs_api,
    sql_arrow,
    visdom_api,
)
from runstream_dashboards.errors import json_errors
from runstream_dashboards.metrics import HealthCollector, render
from runstream_dashboards.ports import AppDeps
from runstream_dashboards.sse import change_events
from runstream_service.errors import BadRequest, NotFound
from runstream_service.store import graphs, queries, readonly_sql
from runstream_service.store.downsample import X_AXES

DEPS_KEY: web.AppKey[AppDeps] = web.AppKey("deps")
REGISTRY_KEY: web.AppKey[CollectorRegistry] = web.AppKey("registry")
STATIC_DIR = Path(__file__).parent / "static"
MAX_WIDTH = 10_000
MAX_HISTOGRAMS = 10_000
MAX_POINTS_ROWS = 10_000_000  # one full read: 10M points are about 0.5 GB of JSON


def _deps(request: web.Request) -> AppDeps:
    return request.app[DEPS_KEY]


def _json(payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    """JSON via orjson: NumPy arrays as they are, and NaN or Inf as null (a gap in a chart)."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def healthz(request: web.Request) -> web.Response:
    health = _deps(request).health()
    return _json(
        {
            "status": "ok",
            "points_committed": health.points_committed,
            "batches_committed": health.batches_committed,
            "batches_rejected": health.batches_rejected,
            "queued_points": health.queued_points,
            "uncompacted_points": health.uncompacted_points,
            "compactions": health.compactions,
            "merges": health.merges,
            "generations": health.generations,
            "compacting": health.compacting,
            "compaction_deferred": health.compaction_deferred,
            "duckdb_memory_limit": health.duckdb_memory_limit,
            "retention": health.retention,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    body = render(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def projects(request: web.Request) -> web.Response:
    deps = _deps(request)
    return _json({"projects": await deps.reader.run(deps.reads.list_projects)})


async def runs(request: web.Request) -> web.Response:
    project = request.query.get("project") or None
    text = request.query.get("q") or None
    config = {k[len("config.") :]: v for k, v in request.query.items() if k.startswith("config.") and len(k) > 7}
    deps = _deps(request)
    found = await deps.reader.run(lambda cur: deps.reads.list_runs(cur, project, text, config))
    keys = sorted({key for run in found for key in run["config"]})
    return _json({"runs": found, "config_keys": keys})


async def tags(request: web.Request) -> web.Response:
    ids = params.run_ids(request)
    deps = _deps(request)
    return _json(await deps.reader.run(lambda cur: deps.reads.list_tags(cur, ids)))


async def scalars(request: web.Request) -> web.Response:
    ids = params.run_ids(request)
    tag = params.required(request, "tag")
    x_axis = params.choice(request, "x", X_AXES)
    x_min, x_max = params.number(request, "x_min"), params.number(request, "x_max")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise BadRequest(f"x_min ({x_min}) must not be greater than x_max ({x_max})")
    width = params.integer(request, "width", 1000, 1, MAX_WIDTH)
    bands = params.choice(request, "bands", ("0", "1")) == "1"  # the envelope, only when it is drawn
    deps = _deps(request)
    found = await deps.reader.run(lambda cur: deps.reads.scalar_series(cur, ids, tag, x_axis, x_min, x_max, width))
    series = [
        {"run_id": run_id, "exact": d.exact, "count": d.count, "x": d.x, "y": d.y}
        | ({"band_x": d.band_x, "band_min": d.band_min, "band_max": d.band_max} if bands else {})
        for run_id, d in found
    ]
    return _json({"tag": tag, "x": x_axis, "width": width, "series": series})


async def points(request: web.Request) -> web.Response:
    """Every point of one scalar series, for export: JSON columns, or CSV with format=csv."""
    run_id = params.required(request, "run")
    tag = params.required(request, "tag")
    x_min, x_max = params.number(request, "x_min"), params.number(request, "x_max")
    as_csv = params.choice(request, "format", ("json", "csv")) == "csv"
    found = await _deps(request).reader.run(
        lambda cur: _deps(request).reads.scalar_points(cur, run_id, tag, x_min, x_max, MAX_POINTS_ROWS)
    )
    if as_csv:
        body = await asyncio.to_thread(_points_csv, found)
        return web.Response(
            body=body,
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{_file_name(run_id, tag)}.csv"'},
        )
    return _json({"run_id": run_id, "tag": tag, "count": int(found["step"].size), **found})


def _points_csv(found: dict[str, Any]) -> bytes:
    lines = ["step,rank,wall_time,value"]
    lines += [
        f"{s},{r},{w!r},{v!r}"
        for s, r, w, v in zip(
            found["step"].tolist(), found["rank"].tolist(), found["wall_time"].tolist(), found["value"].tolist()
        )
    ]
    return ("\n".join(lines) + "\n").encode()


def _file_name(run_id: str, tag: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{run_id}-{tag}")


async def scalar_groups(request: web.Request) -> web.Response:
    ids = params.run_ids(request)
    tag = params.required(request, "tag")
    key = params.required(request, "group_by")
    x_axis = params.choice(request, "x", X_AXES)
    x_min, x_max = params.number(request, "x_min"), params.number(request, "x_max")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise BadRequest(f"x_min ({x_min}) must not be greater than x_max ({x_max})")
    width = params.integer(request, "width", 1000, 1, MAX_WIDTH)
    found = await _deps(request).reader.run(
        lambda cur: _deps(request).reads.scalar_groups(cur, ids, tag, key, x_axis, x_min, x_max, width)
    )
    return _json({"tag": tag, "group_by": key, "x": x_axis, "width": width, "groups": found})


async def histograms(request: web.Request) -> web.Response:
    run_id = params.required(request, "run")
    tag = params.required(request, "tag")
    limit = params.integer(request, "limit", 50, 1, MAX_HISTOGRAMS)
    buckets = params.choice(request, "buckets", ("1", "0")) == "1"
    result = await _deps(request).reader.run(lambda cur: queries.histograms(cur, run_id, tag, limit, buckets))
    return _json(result)


async def images(request: web.Request) -> web.Response:
    run_id = params.required(request, "run")
    tag = params.required(request, "tag")
    found = await _deps(request).reader.run(lambda cur: queries.list_images(cur, run_id, tag))
    for image in found:
        image["url"] = str(
            request.app.router["image"]
            .url_for()
            .with_query({"run": run_id, "tag": tag, "step": str(image["step"]), "rank": str(image["rank"])})
        )
    return _json({"images": found})


async def texts(request: web.Request) -> web.Response:
    run_id = params.required(request, "run")
    tag = params.required(request, "tag")
    limit = params.integer(request, "limit", 1000, 1, 100_000)
    found = await _deps(request).reader.run(lambda cur: queries.list_texts(cur, run_id, tag, limit))
    return _json({"run_id": run_id, "tag": tag, "texts": found})


async def graph_list(request: web.Request) -> web.Response:
    run_id = params.required(request, "run")
    found = await _deps(request).reader.run(lambda cur: graphs.list_graphs(cur, run_id))
    return _json({"run_id": run_id, "graphs": found})


async def graph(request: web.Request) -> web.Response:
    """One graph's document, sent as stored; the last one of the tag unless `step` is given."""
    run_id = params.required(request, "run")
    tag = request.query.get("tag", "graph")
    step = params.integer(request, "step", -1, 0, 2**63 - 1)
    rank = params.integer(request, "rank", 0, 0, 2**31 - 1)
    doc = await _deps(request).reader.run(
        lambda cur: graphs.graph_doc(cur, run_id, tag, None if step < 0 else step, rank)
    )
    return web.Response(text=doc, content_type="application/json")


async def image(request: web.Request) -> web.Response:
    run_id = params.required(request, "run")
    tag = params.required(request, "tag")
    step = params.integer(request, "step", -1, 0, 2**63 - 1)
    if step < 0:
        raise BadRequest("missing query parameter 'step'")
    rank = params.integer(request, "rank", 0, 0, 2**31 - 1)
    found = await _deps(request).reader.run(lambda cur: queries.image_bytes(cur, run_id, tag, step, rank))
    etag = '"' + hashlib.blake2b(found.data, digest_size=12).hexdigest() + '"'
    # Behind tokens, shared caches must not keep an image for people without one.
    audience = "public" if request.app[auth.TOKENS_KEY] is None else "private"
    headers = {"ETag": etag, "Cache-Control": f"{audience}, max-age=31536000, immutable"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.data, content_type=found.mime, headers=headers)


async def sql(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest('the body must be JSON: {"sql": "SELECT ...", "limit": 1000}') from None
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
        raise BadRequest('the body must be a JSON object with a string "sql"')
    if sql_arrow.wants_arrow(request.headers.get("Accept", "")):
        return await _sql_arrow(request, body)
    limit = body.get("limit", 1000)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100_000:
        raise BadRequest('"limit" must be an integer between 1 and 100000')
    query: str = body["sql"]
    timeout = _deps(request).sql_timeout
    result = await _deps(request).reader.run(lambda cur: readonly_sql.run_read_only(cur, query, limit, timeout))
    return _json(result)


async def _sql_arrow(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """The Arrow IPC stream (sql_arrow.py): no row cap unless "limit" is given, a byte cap instead."""
    limit = body.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise BadRequest('"limit" must be an integer >= 1 (or left out: the Arrow answer has no row cap)')
    deps = _deps(request)
    limits = sql_arrow.Limits(timeout=deps.sql_timeout, max_bytes=deps.sql_max_bytes, max_rows=limit)
    return await sql_arrow.answer(request, deps.reader, body["sql"], limits)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `update` with the runs that received data, at most once a second."""
    changes = _deps(request).changes
    return await change_events(request, "runs", lambda: changes.commit_number, changes.runs_changed_since)


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if not page.exists():
        raise NotFound("the web UI is not built: run `make demo` (or `npm ci && npm run build` in dashboards/web)")
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


def make_app(deps: AppDeps, hosts: origin.HostPolicy = origin.LOOPBACK_ONLY) -> web.Application:
    """The HTTP app over `deps`; errors rendered as JSON (outermost), then the Host and Origin check on
    every route (origin.py; `hosts`: the names this listener answers), then the token check."""
    # The Visdom protocol mounted under /visdom checks its own login (runstream_service.visdom.routes).
    app = web.Application(
        middlewares=[json_errors, origin.guard(hosts), visdom_api.skip_for_visdom(auth.require_token)],
        client_max_size=1 << 20,
    )
    app[DEPS_KEY] = deps
    auth.setup(app, deps.tokens)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(HealthCollector(deps.health))
    app[REGISTRY_KEY] = registry
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/projects", projects)
    app.router.add_get("/api/runs", runs)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/scalars", scalars)
    app.router.add_get("/api/scalar_groups", scalar_groups)
    app.router.add_get("/api/points", points)
    app.router.add_get("/api/histograms", histograms)
    app.router.add_get("/api/images", images)
    app.router.add_get("/api/texts", texts)
    app.router.add_get("/api/graphs", graph_list)
    app.router.add_get("/api/graph", graph)
    app.router.add_get("/api/image", image, name="image")
    app.router.add_post("/api/sql", sql)
    sql_arrow.setup(app)
    app.router.add_get("/api/events", events)
    visdom_api.setup(app, deps)
    projector_api.setup(app, deps)
    curves_api.setup(app, deps)
    hparams_api.setup(app, deps)
    runs_api.setup(app, deps)
    media_api.setup(app, deps)
    app.router.add_get("/", index)
    if STATIC_DIR.exists():
        app.router.add_static("/static", STATIC_DIR)
    return app
