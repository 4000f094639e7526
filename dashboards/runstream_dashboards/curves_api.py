"""The web UI's reads of PR curves, custom-scalar layouts and tag names (store/curve_queries.py).

`GET /api/pr_curves?runs=ID,ID&tag=T&step=N` -> `{"tag", "series": [{"run_id", "steps", "step", "rank",
"wall_time", "thresholds", "precision", "recall", "true_positives", "false_positives", "true_negatives",
"false_negatives"}]}`: per run its steps and its curve at the last step at or before N (each run's last
without `step`); `GET /api/custom_scalars?runs=ID,ID` -> `{"layouts": [{"run_id", "layout"}]}`;
`GET /api/tag_info?runs=ID,ID` -> `{"tags": {tag: {"display_name", "description"}}}`.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from runstream_dashboards import params
from runstream_dashboards.ports import AppDeps
from runstream_service.store import curve_queries

DEPS_KEY: web.AppKey[AppDeps] = web.AppKey("curves_deps")
MAX_STEP = 2**63 - 1


def _json(payload: object) -> web.Response:
    """JSON as the app sends it: NaN and Inf as null (a precision of 0/0 is NaN)."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    return web.Response(body=body, content_type="application/json")


async def pr_curves(request: web.Request) -> web.Response:
    ids = params.run_ids(request)
    tag = params.required(request, "tag")
    step = params.integer(request, "step", -1, 0, MAX_STEP)
    found = await request.app[DEPS_KEY].reader.run(
        lambda cur: curve_queries.pr_curves(cur, ids, tag, None if step < 0 else step)
    )
    return _json({"tag": tag, "series": found})


async def custom_scalars(request: web.Request) -> web.Response:
    ids = params.run_ids(request)
    found = await request.app[DEPS_KEY].reader.run(lambda cur: curve_queries.custom_scalar_layouts(cur, ids))
    return _json({"layouts": found})


async def tag_info(request: web.Request) -> web.Response:
    ids = params.run_ids(request)
    found = await request.app[DEPS_KEY].reader.run(lambda cur: curve_queries.tag_info(cur, ids))
    return _json({"tags": found})


def setup(app: web.Application, deps: AppDeps) -> None:
    app[DEPS_KEY] = deps
    app.router.add_get("/api/pr_curves", pr_curves)
    app.router.add_get("/api/custom_scalars", custom_scalars)
    app.router.add_get("/api/tag_info", tag_info)
