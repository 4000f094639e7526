"""The HTTP side's one error path: every failure becomes JSON {"error": ..., "status": ...}.

Handlers and the code below them raise the service's errors (runstream_service.errors: BadRequest,
NotFound, TooLarge, Unauthenticated, PermissionDenied, the read-only SQL errors, ...); each carries
its HTTP status, and `json_errors` renders it. Handlers never translate an error by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from runstream_service.errors import RunstreamError

logger = logging.getLogger("runstream.http")


def error_json(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RunstreamError as exc:
        return error_json(exc.http_status, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_json(exc.status, exc.reason or "error")
    except Exception:
        logger.exception("%s %s failed", request.method, request.path_qs)
        return error_json(500, "the server failed to answer this request; its log has the details")
