"""Reading query parameters, with 400s (BadRequest) that say which parameter was wrong and why."""

from __future__ import annotations

import math

from aiohttp import web

from runstream_service.errors import BadRequest


def required(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise BadRequest(f"missing query parameter {name!r}")
    return value


def run_ids(request: web.Request, name: str = "runs", limit: int = 500) -> list[str]:
    ids = [r for r in required(request, name).split(",") if r]
    if not ids:
        raise BadRequest(f"{name!r} must list at least one run id, separated by commas")
    if len(ids) > limit:
        raise BadRequest(f"at most {limit} runs at a time, got {len(ids)}")
    return list(dict.fromkeys(ids))


def integer(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name!r} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name!r} must be between {low} and {high}, got {value}")
    return value


def number(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name!r} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise BadRequest(f"{name!r} must be finite, got {raw!r}")
    return value


def choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str:
    value = request.query.get(name) or choices[0]
    if value not in choices:
        raise BadRequest(f"{name!r} must be one of {', '.join(choices)}, got {value!r}")
    return value
