"""Server-sent events of what changed: one stream for the runs (/api/events) and the Visdom windows
(/api/visdom/events), each over its own change counter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

EVENT_INTERVAL_SECONDS = 1.0  # at most one `update` event a second; a keep-alive comment otherwise


async def change_events(
    request: web.Request, key: str, commit_number: Callable[[], int], changed_since: Callable[[int], Any]
) -> web.StreamResponse:
    """Stream `event: update` with `{key: changed_since(seen), "time": ...}` whenever `commit_number()`
    moved; the client reconnects after 2 s if the stream breaks."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    seen = commit_number()
    await response.write(b"retry: 2000\n\n")
    while True:
        await asyncio.sleep(EVENT_INTERVAL_SECONDS)
        if commit_number() == seen:
            await response.write(b": keep-alive\n\n")
            continue
        changed = changed_since(seen)
        seen = commit_number()
        payload = orjson.dumps({key: changed, "time": time.time()})
        await response.write(b"event: update\ndata: " + payload + b"\n\n")
