"""The HTTP side. For now only `/healthz`; the dashboard API and UI come with their own issue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from runstream_service.server import Server

SERVER_KEY: web.AppKey[Server] = web.AppKey("server")


async def healthz(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    stats = server.writer.stats
    return web.json_response(
        {
            "status": "ok",
            "points_committed": stats.points,
            "batches_committed": stats.batches,
            "batches_rejected": server.ingest.counters.rejected_batches,
            "queued_points": server.writer.queued_points,
        }
    )


def make_app(server: Server) -> web.Application:
    app = web.Application()
    app[SERVER_KEY] = server
    app.router.add_get("/healthz", healthz)
    return app
