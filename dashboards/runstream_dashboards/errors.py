"""The HTTP side's one error path: every failure becomes JSON {"error": ..., "status": ...}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from runstream_service.store.queries import NotFound

logger = logging.getLogger("runstream.http")


class HttpError(Exception):
    """Raised by handlers: `status` and a message that tells the user what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_json(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        return error_json(exc.status, str(exc))
    except NotFound as exc:
        return error_json(404, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_json(exc.status, exc.reason or "error")
    except Exception:
        logger.exception("%s %s failed", request.method, request.path_qs)
        return error_json(500, "the server failed to answer this request; its log has the details")
