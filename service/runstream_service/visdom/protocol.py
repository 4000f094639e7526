"""Visdom's HTTP protocol, pure: request bodies to typed records, and the replies the client parses.

The visdom client (0.2.4) POSTs `json.dumps(msg)` as the raw body of every call, with the bare tokens
`NaN`, `Infinity` and `-Infinity` that Python's json writes for non-finite floats (surf and mesh send
them); they are read as floats here. What each endpoint expects back is plain text the client parses
as it is: `true` / `false`, a window id, a JSON list of envs, a window's JSON. Every malformed input
raises BadRequest (or TooLarge) naming the field, so the server answers 4xx and stays up.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from runstream_service.errors import BadRequest

MAX_BODY_BYTES = 64 << 20  # a video or a large image grid; Visdom itself has no limit
MAX_NAME_CHARS = 512  # env and window ids
DEFAULT_ENV = "main"
UPDATE_DIRS = ("replace", "appendRow", "appendColumn", "prependRow", "prependColumn")


class BodyTooLarge(BadRequest):
    """The request body is over MAX_BODY_BYTES (HTTP 413)."""

    http_status = 413


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body; NaN and Infinity tokens become floats."""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(
            f"the body has {len(raw)} bytes, more than the limit of {MAX_BODY_BYTES}; send less per call"
        )
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body must be UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(value).__name__}")
    return value


def env_of(msg: dict[str, Any], key: str = "eid") -> str:
    """The env a message names (`main` when absent), with '/' replaced by '_' as Visdom does."""
    env = msg.get(key)
    if env is None:
        return DEFAULT_ENV
    return _name(env, key).replace("/", "_")


def _name(value: Any, field: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadRequest(f"'{field}' must be a string, not {type(value).__name__}")
    if len(value) > MAX_NAME_CHARS or (not value and field != "win"):
        raise BadRequest(f"'{field}' must have 1 to {MAX_NAME_CHARS} characters")
    return value  # an empty window id is Visdom's too: check_connection() asks whether window '' exists


def _optional_name(msg: dict[str, Any], field: str) -> str | None:
    value = msg.get(field)
    return None if value is None else _name(value, field)


def _dict(msg: dict[str, Any], field: str) -> dict[str, Any]:
    value = msg.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"'{field}' must be a JSON object")
    return value


def _data_list(msg: dict[str, Any]) -> list[dict[str, Any]]:
    data = msg.get("data")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise BadRequest("'data' must be a list of objects (Plotly traces, or one {type, content})")
    return data


@dataclass(frozen=True)
class WindowPost:
    """POST /events: create or replace a window."""

    env: str
    win: str | None
    data: list[dict[str, Any]]
    layout: dict[str, Any]
    opts: dict[str, Any]


def window_post(msg: dict[str, Any]) -> WindowPost:
    if msg.get("func") is not None:
        raise BadRequest("Lua Torch messages ('func') are not supported, as in Visdom since 0.1.8.4")
    data = _data_list(msg)
    if not data:
        raise BadRequest("'data' must hold at least one trace")
    if not isinstance(data[0].get("type"), str):
        raise BadRequest("'data[0].type' must be a string")
    check_trace_lengths(data)
    return WindowPost(env_of(msg), _optional_name(msg, "win"), data, _dict(msg, "layout"), _dict(msg, "opts"))


LINE_TYPES = ("scatter", "scattergl", "scatter3d")


def check_trace_lengths(data: list[dict[str, Any]]) -> None:
    """Line and scatter traces must give as many x as y (and z) values: Plotly would drop the extra ones."""
    for i, trace in enumerate(data):
        if trace.get("type") not in LINE_TYPES:
            continue
        lengths = {axis: len(trace[axis]) for axis in ("x", "y", "z") if isinstance(trace.get(axis), list)}
        if len(set(lengths.values())) > 1:
            counts = ", ".join(f"{n} {axis}" for axis, n in lengths.items())
            raise BadRequest(f"data[{i}] has {counts} values; a line or scatter trace needs as many of each")


@dataclass(frozen=True)
class UpdatePost:
    """POST /update: append to, replace or remove traces, append text or images, or change opts."""

    env: str
    win: str
    data: list[dict[str, Any]] | dict[str, Any] | None  # a dict for embeddings' updates
    layout: dict[str, Any]
    opts: dict[str, Any]
    name: str | None
    append: bool
    delete: bool
    update_dir: str | None


def update_post(msg: dict[str, Any]) -> UpdatePost:
    win = msg.get("win")
    if win is None:
        raise BadRequest("'win' is required to update a window")
    data: list[dict[str, Any]] | dict[str, Any] | None = None
    if isinstance(msg.get("data"), dict):
        data = msg["data"]
    elif msg.get("data") is not None:
        data = _data_list(msg)
        check_trace_lengths(data)
    update_dir = msg.get("updateDir")
    if update_dir is not None and update_dir not in UPDATE_DIRS:
        raise BadRequest(f"'updateDir' {update_dir!r} is not one of {', '.join(UPDATE_DIRS)}")
    name = msg.get("name")
    if name is not None and not isinstance(name, str):
        name = str(name)
    return UpdatePost(
        env=env_of(msg),
        win=_name(win, "win"),
        data=data,
        layout=_dict(msg, "layout"),
        opts=_dict(msg, "opts"),
        name=name,
        append=bool(msg.get("append")),
        delete=bool(msg.get("delete")),
        update_dir=update_dir,
    )


@dataclass(frozen=True)
class WindowRef:
    """A window (or, with win None, every window) of an env: close, win_exists, win_hash, win_data."""

    env: str
    win: str | None


def window_ref(msg: dict[str, Any], env_key: str = "eid") -> WindowRef:
    return WindowRef(env_of(msg, env_key), _optional_name(msg, "win"))


@dataclass(frozen=True)
class SetWindowData:
    """POST /win_data with 'data': a window's JSON (or, with win None, an env's windows) as returned."""

    env: str
    win: str | None
    panes: dict[str, dict[str, Any]]  # win -> pane


def set_window_data(msg: dict[str, Any]) -> SetWindowData:
    ref = window_ref(msg)
    raw = msg["data"]
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise BadRequest(f"'data' is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadRequest("'data' must be a window's JSON object, as get_window_data returns it")
    if ref.win is not None:
        panes = {ref.win: data}
    else:
        panes = data
    for win, pane in panes.items():
        if not isinstance(pane, dict) or "type" not in pane or "content" not in pane:
            raise BadRequest(f"window {win!r}: expected a Visdom window object with 'type' and 'content'")
    return SetWindowData(ref.env, ref.win, panes)


@dataclass(frozen=True)
class ForkEnv:
    source: str
    target: str


def fork_env(msg: dict[str, Any]) -> ForkEnv:
    return ForkEnv(env_of({"eid": msg.get("prev_eid")}, "eid"), env_of({"eid": msg.get("eid")}, "eid"))


def save_envs(msg: dict[str, Any]) -> list[str]:
    data = msg.get("data")
    if not isinstance(data, list):
        raise BadRequest("'data' must be a list of env names")
    return [_name(env, "data[]").replace("/", "_") for env in data]


# -- replies ---------------------------------------------------------------------------------------


def boolean(value: bool) -> str:
    """win_exists' answer, which the client compares with the strings 'true' and 'false'."""
    return "true" if value else "false"


def dumps(value: Any) -> str:
    """JSON as Visdom writes it (Python's json: NaN and Infinity as bare tokens)."""
    return json.dumps(value)


def is_missing(value: Any) -> bool:
    """None or NaN: Visdom skips an update whose x values are all missing (a masked update)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
