"""The web UI's Visdom view reads: envs, an env's windows, one window, and their live changes.

`GET /api/visdom/envs` -> `{"envs": [{"env", "windows", "updated_at"}]}`;
`GET /api/visdom/envs/{env}?width=800` -> `{"env", "windows": [...]}` (each window as
runstream_service.visdom.views shapes it: long line and scatter traces M4-downsampled to about `width`
columns); `GET /api/visdom/envs/{env}/windows/{win}?width=800` -> one window;
`GET /api/visdom/events` -> server-sent events `update` with `{"windows": [{"env", "win"}], "time"}`
(win null: the whole env changed) at most once a second, after the change has committed.
The Visdom protocol itself (what the visdom client calls) is mounted under /visdom by the server,
and checks tokens itself (the client sends the cookie `user_password`, not a bearer token).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from runstream_dashboards import params
from runstream_dashboards.errors import Handler
from runstream_dashboards.ports import AppDeps, VisdomReads
from runstream_dashboards.sse import change_events
from runstream_service.errors import NotFound

PREFIX = "/visdom"  # where the server mounts the Visdom protocol on this app
DEFAULT_WIDTH = 800
MAX_WIDTH = 10_000
DEPS_KEY: web.AppKey[AppDeps] = web.AppKey("visdom_deps")


def _reads(request: web.Request) -> VisdomReads:
    reads = request.app[DEPS_KEY].visdom
    if reads is None:
        raise NotFound("this server has no Visdom view")
    return reads


def _json(payload: object) -> web.Response:
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY, default=str)  # NaN as null
    return web.Response(body=body, content_type="application/json")


async def envs(request: web.Request) -> web.Response:
    return _json({"envs": await _reads(request).envs()})


async def env(request: web.Request) -> web.Response:
    width = params.integer(request, "width", DEFAULT_WIDTH, 1, MAX_WIDTH)
    return _json(await _reads(request).env(request.match_info["env"], width))


async def window(request: web.Request) -> web.Response:
    width = params.integer(request, "width", DEFAULT_WIDTH, 1, MAX_WIDTH)
    return _json(await _reads(request).window(request.match_info["env"], request.match_info["win"], width))


async def events(request: web.Request) -> web.StreamResponse:
    reads = _reads(request)
    return await change_events(request, "windows", lambda: reads.commit_number, reads.windows_changed_since)


def skip_for_visdom(middleware: web.types.Middleware) -> web.types.Middleware:  # type: ignore[name-defined]
    """`middleware`, except on the mounted Visdom protocol's paths, which authenticate by themselves."""

    @web.middleware
    async def wrapped(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            return await handler(request)
        return await middleware(request, handler)  # type: ignore[no-any-return]

    return wrapped


def setup(app: web.Application, deps: AppDeps) -> None:
    app[DEPS_KEY] = deps
    app.router.add_get("/api/visdom/envs", envs)
    app.router.add_get("/api/visdom/envs/{env}", env)
    app.router.add_get("/api/visdom/envs/{env}/windows/{win}", window)
    app.router.add_get("/api/visdom/events", events)
