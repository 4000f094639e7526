"""Visdom's HTTP and websocket endpoints on aiohttp, mountable under any prefix ('' or '/visdom').

`add_routes(app, visdom, prefix)` registers them on an app: server.py does so on the Visdom port's own
app (`make_app`) and under `/visdom` on the HTTP app, for clients given `base_url='/visdom'`. Handlers
parse with protocol.py, write through the single writer (storage.py's Transactions, answered after
commit), read on reader cursors, and reply with what the visdom client parses.

Auth (with --tokens): the client logs in with `Visdom(username=..., password=TOKEN)`, which POSTs
`{"username", "password": sha256(TOKEN)}` to the prefix's root; a known token gets the cookie
`user_password` (a random session id; the client sends it on every call and on its websocket). An
`Authorization: Bearer TOKEN` header works too. Writes need `write:visdom` or `write:*`; reads need
`read`, or one of those write scopes, since the client itself reads as it writes (check_connection()
asks win_exists and opens the websocket, scripts ask win_exists before appending).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import duckdb
from aiohttp import WSMsgType, web
from aiohttp.typedefs import Middleware

from runstream_service.auth import Token, TokenTable, bearer, require_read, require_write
from runstream_service.errors import BadRequest, RunstreamError, Unauthenticated
from runstream_service.store.base import Transaction
from runstream_service.visdom import answers, protocol, storage
from runstream_service.visdom.storage import PROJECT, VisdomWrites

logger = logging.getLogger("runstream.visdom")

COOKIE = "user_password"
SESSION_SECONDS = 30 * 24 * 3600
MAX_SESSIONS = 10_000
MAX_POLLERS = 1_000  # polling clients (use_polling=True) remembered; the oldest is forgotten first
MAX_POLL_MESSAGES = 1_000  # events kept for one polling client between two queries
T = TypeVar("T")


class Reader(Protocol):
    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T: ...


class Changes:
    """Which windows changed, for the web UI's live updates: a counter and (env, win) -> its count.

    Marked on the event loop after the write's commit, so a reader told of a change sees it.
    """

    def __init__(self) -> None:
        self.commit_number = 0
        self._changed: dict[tuple[str, str | None], int] = {}

    def mark(self, env: str, win: str | None) -> None:
        self.commit_number += 1
        self._changed[(env, win)] = self.commit_number
        if len(self._changed) > 100_000:  # forget the oldest half; readers that far behind refetch all
            for key in list(self._changed)[: len(self._changed) // 2]:
                del self._changed[key]

    def windows_changed_since(self, commit_number: int) -> list[dict[str, str | None]]:
        return [{"env": env, "win": win} for (env, win), n in list(self._changed.items()) if n > commit_number]


class Sessions:
    """Visdom logins: the cookie holds a random id; the token entry it stands for stays here."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, tuple[Token, float]] = OrderedDict()

    def create(self, token: Token) -> str:
        session = secrets.token_urlsafe(32)
        self._by_id[session] = (token, time.monotonic() + SESSION_SECONDS)
        while len(self._by_id) > MAX_SESSIONS:
            self._by_id.popitem(last=False)
        return session

    def get(self, session: str | None) -> Token | None:
        found = self._by_id.get(session) if session else None
        if found is None or time.monotonic() > found[1]:
            return None
        return found[0]


def token_by_password(tokens: TokenTable, password: str) -> Token | None:
    """The token whose SHA-256 (hex) the client sent as its password, compared in constant time."""
    try:
        digest = bytes.fromhex(password)
    except ValueError:
        return None
    found = None
    # TokenTable keeps the digests; it has no lookup by digest yet, so this reads its entries.
    for token in tokens._tokens:
        if hmac.compare_digest(digest, token.digest):
            found = token
    return found


@dataclass
class Visdom:
    """What the handlers share: the writes, the writer's submit, reads, tokens, sessions, sockets.

    `index` (env -> its windows) answers win_exists and env_state without a read: the client asks
    win_exists before every `update='append'`, so that call is half of an append's round trips. It is
    loaded at start (`load`) and changed on the event loop after each write commits, in commit order
    (the writer completes futures in that order), from what the transaction itself returned.
    """

    writes: VisdomWrites
    submit: Callable[[Transaction], Awaitable[Any]]
    reader: Reader
    tokens: TokenTable | None
    changes: Changes = field(default_factory=Changes)
    sessions: Sessions = field(default_factory=Sessions)
    clients: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)
    index: dict[str, set[str]] = field(default_factory=dict)
    polls: dict[str, list[str]] = field(default_factory=dict)  # polling client sid -> messages waiting

    async def load(self) -> None:
        self.index = await self.reader.run(storage.window_index)

    async def write(self, transaction: Transaction, env: str, win: str | None) -> Any:
        result = await self.submit(transaction)
        self.changes.mark(env, win)
        return result

    def added(self, env: str, win: str | None) -> None:
        wins = self.index.setdefault(env, set())
        if win is not None:
            wins.add(win)

    def replaced(self, env: str, wins: list[str] | None) -> None:
        if wins is None:
            self.index.pop(env, None)
        else:
            self.index[env] = set(wins)


VISDOM_KEY: web.AppKey[Visdom] = web.AppKey("visdom")


def _visdom(request: web.Request) -> Visdom:
    return request.app[VISDOM_KEY]


def _authorize(request: web.Request, write: bool) -> None:
    tokens = _visdom(request).tokens
    if tokens is None:
        return
    presented = bearer(request.headers.get("Authorization"))
    if presented is not None:
        token = tokens.lookup(presented)
    else:
        token = _visdom(request).sessions.get(request.cookies.get(COOKIE))
    if token is None:
        raise Unauthenticated(
            "log in first: Visdom(username=ANY_NAME, password=TOKEN) with a token of the server's token file"
        )
    if write:
        require_write(token, PROJECT)
    elif not token.can_write(PROJECT):  # the client's own reads (check_connection, win_exists) come with writing
        require_read(token)


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, read up to protocol.MAX_BODY_BYTES (not the HTTP app's own limit)."""
    limit = protocol.MAX_BODY_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise protocol.BodyTooLarge(
            f"the body has {request.content_length} bytes, more than the limit of {limit}; send less per call"
        )
    chunks: list[bytes] = []
    size = 0
    while size <= limit and (chunk := await request.content.read(1 << 20)):
        chunks.append(chunk)
        size += len(chunk)
    return protocol.parse_body(b"".join(chunks))


def _text(value: str) -> web.Response:
    return web.Response(text=value, content_type="text/plain")


# -- writes ----------------------------------------------------------------------------------


async def events(request: web.Request) -> web.Response:
    _authorize(request, write=True)
    post = protocol.window_post(await _body(request))
    visdom = _visdom(request)
    win = await visdom.write(visdom.writes.post_window(post), post.env, post.win)
    visdom.added(post.env, win)
    if post.win is None:
        visdom.changes.mark(post.env, win)
    return _text(win)


async def update(request: web.Request) -> web.Response:
    _authorize(request, write=True)
    post = protocol.update_post(await _body(request))
    visdom = _visdom(request)
    win = await visdom.write(visdom.writes.update(post), post.env, post.win)
    visdom.added(post.env, win)
    return _text(win)


async def close(request: web.Request) -> web.Response:
    _authorize(request, write=True)
    ref = protocol.window_ref(await _body(request))
    visdom = _visdom(request)
    visdom.replaced(ref.env, await visdom.write(visdom.writes.close(ref.env, ref.win), ref.env, ref.win))
    return _text("")


async def delete_env(request: web.Request) -> web.Response:
    _authorize(request, write=True)
    env = protocol.env_of(await _body(request))
    visdom = _visdom(request)
    await visdom.write(visdom.writes.delete_env(env), env, None)
    visdom.replaced(env, None)
    return _text("")


async def fork_env(request: web.Request) -> web.Response:
    _authorize(request, write=True)
    fork = protocol.fork_env(await _body(request))
    visdom = _visdom(request)
    visdom.replaced(fork.target, await visdom.write(visdom.writes.fork_env(fork), fork.target, None))
    return _text(fork.target)


async def env_post(request: web.Request) -> web.Response:
    """POST /env/ENV: the client's start (and Visdom's page loading an env); makes the env if new."""
    _authorize(request, write=True)
    body = await _body(request)
    env = protocol.env_of({"eid": body.get("eid", request.match_info["env"])})
    visdom = _visdom(request)
    if env not in visdom.index:
        await visdom.write(visdom.writes.create_env(env), env, None)
        visdom.added(env, None)
    return _text("")


async def save(request: web.Request) -> web.Response:
    _authorize(request, write=True)
    return _text(await answers.answer(_visdom(request), "save", await _body(request)))


async def win_data(request: web.Request) -> web.Response:
    body = await _body(request)
    visdom = _visdom(request)
    if "data" in body:
        _authorize(request, write=True)
        given = protocol.set_window_data(body)
        visdom.replaced(given.env, await visdom.write(visdom.writes.set_window_data(given), given.env, given.win))
        return _text("")
    _authorize(request, write=False)
    return _text(await answers.answer(visdom, "win_data", body))


# -- reads -------------------------------------------------------------------------------------


async def win_exists(request: web.Request) -> web.Response:
    _authorize(request, write=False)
    return _text(await answers.answer(_visdom(request), "win_exists", await _body(request)))


async def win_hash(request: web.Request) -> web.Response:
    _authorize(request, write=False)
    return _text(await answers.answer(_visdom(request), "win_hash", await _body(request)))


async def env_state(request: web.Request) -> web.Response:
    _authorize(request, write=False)
    return _text(await answers.answer(_visdom(request), "env_state", await _body(request)))


INDEX_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>runstream: Visdom</title></head>
<body style="font:15px system-ui,sans-serif;max-width:36em;margin:4em auto">
<h1>runstream speaks Visdom here</h1>
<p>Point <code>visdom.Visdom()</code> at this address; its windows are kept in runstream's DuckDB file.
They are drawn in runstream's web UI (its Visdom view) on the dashboard's HTTP port.</p></body></html>
"""


async def index(request: web.Request) -> web.Response:
    return web.Response(text=INDEX_PAGE, content_type="text/html")


async def login(request: web.Request) -> web.Response:
    """The client's login: `{"username", "password": sha256(TOKEN)}`; 200 and the cookie, or 400."""
    body = await _body(request)
    visdom = _visdom(request)
    if visdom.tokens is None:
        return _text("")
    password = body.get("password")
    token = token_by_password(visdom.tokens, password) if isinstance(password, str) else None
    if token is None:
        return web.json_response(
            {"error": "unknown token: log in with password=TOKEN, a token of the server's token file", "status": 400},
            status=400,
        )
    response = _text("")
    response.set_cookie(COOKIE, visdom.sessions.create(token), httponly=True, samesite="Strict", secure=request.secure)
    return response


# -- websockets ---------------------------------------------------------------------------------


async def vis_socket(request: web.Request) -> web.WebSocketResponse:
    """The client's back channel: the `alive` handshake it waits for, then events from the page."""
    _authorize(request, write=False)
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    visdom = _visdom(request)
    visdom.clients.add(ws)
    await ws.send_str(json.dumps({"command": "alive", "data": "vis_alive"}))
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            msg = json.loads(message.data)
        except json.JSONDecodeError:
            continue
        if isinstance(msg, dict) and msg.get("cmd") == "echo":
            await _to_clients(visdom, msg)
    return ws


async def page_socket(request: web.Request) -> web.WebSocketResponse:
    """A page's socket: `{"cmd": "forward_to_vis", "data": EVENT}` reaches the clients' event handlers."""
    _authorize(request, write=False)
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    visdom = _visdom(request)
    await ws.send_str(json.dumps({"command": "register", "data": secrets.token_hex(6), "readonly": False}))
    await ws.send_str(json.dumps({"command": "env_update", "data": sorted(visdom.index)}))
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            msg = json.loads(message.data)
        except json.JSONDecodeError:
            continue
        if isinstance(msg, dict) and msg.get("cmd") == "forward_to_vis" and isinstance(msg.get("data"), dict):
            await _to_clients(visdom, msg["data"])
    return ws


async def vis_socket_wrap(request: web.Request) -> web.Response:
    """The client's polling back channel (`Visdom(use_polling=True)`): `init` gives a sid whose first
    message is the `alive` handshake; `query` takes the messages waiting for that sid."""
    _authorize(request, write=False)
    body = await _body(request)
    polls = _visdom(request).polls
    if body.get("message_type") == "init":
        new = secrets.token_hex(8)
        polls[new] = [json.dumps({"command": "alive", "data": "vis_alive"})]
        while len(polls) > MAX_POLLERS:
            polls.pop(next(iter(polls)))
        return _text(json.dumps({"success": True, "sid": new}))
    sid = body.get("sid")
    if not isinstance(sid, str) or sid not in polls:
        raise BadRequest('unknown \'sid\'; send {"message_type": "init"} first')
    messages, polls[sid] = polls[sid], []
    return _text(json.dumps({"success": True, "messages": messages}))


async def _to_clients(visdom: Visdom, event: dict[str, Any]) -> None:
    text = json.dumps(event)
    for queued in visdom.polls.values():
        if len(queued) < MAX_POLL_MESSAGES:
            queued.append(text)
    for ws in list(visdom.clients):
        if not ws.closed:
            try:
                await ws.send_str(text)
            except (ConnectionError, RuntimeError):
                pass


# -- mounting -------------------------------------------------------------------------------------


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The Visdom port's error rendering, as the HTTP app's: `{"error", "status"}` with the status."""
    try:
        return await handler(request)
    except RunstreamError as exc:
        return web.json_response({"error": str(exc), "status": exc.http_status}, status=exc.http_status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason or "error", "status": exc.status}, status=exc.status)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        logger.exception("%s %s failed", request.method, request.path_qs)
        return web.json_response(
            {"error": "the server failed this request; its log says why", "status": 500}, status=500
        )


def add_routes(app: web.Application, visdom: Visdom, prefix: str = "") -> None:
    """Visdom's endpoints under `prefix` ('' or '/visdom'); the app must render RunstreamError (json_errors)."""
    app[VISDOM_KEY] = visdom
    router = app.router
    for path, handler in (
        ("/events", events),
        ("/update", update),
        ("/close", close),
        ("/delete_env", delete_env),
        ("/fork_env", fork_env),
        ("/save", save),
        ("/win_data", win_data),
        ("/win_exists", win_exists),
        ("/win_hash", win_hash),
        ("/env_state", env_state),
        ("/env/{env:.*}", env_post),
    ):
        router.add_post(prefix + path, handler)
    router.add_post(prefix + "/vis_socket_wrap", vis_socket_wrap)
    router.add_get(prefix + "/env/{env:.*}", index)
    router.add_get(prefix + "/vis_socket", vis_socket)
    router.add_get(prefix + "/socket", page_socket)
    for root in {prefix or "/", prefix + "/"}:
        router.add_get(root, index)
        router.add_post(root, login)


def make_app(visdom: Visdom, middlewares: Sequence[Middleware] = ()) -> web.Application:
    """The Visdom port's own app: the endpoints at the root; `middlewares` run inside the error rendering
    (server.py passes the Host and Origin check of runstream_dashboards.origin)."""
    app = web.Application(middlewares=[json_errors, *middlewares], client_max_size=protocol.MAX_BODY_BYTES)
    add_routes(app, visdom, "")
    return app


def is_visdom_path(path: str, prefix: str = "/visdom") -> bool:
    """Whether the HTTP app's request goes to the mounted Visdom endpoints (which check tokens themselves)."""
    return path == prefix or path.startswith(prefix + "/")


__all__ = ["Changes", "Visdom", "add_routes", "is_visdom_path", "make_app"]
