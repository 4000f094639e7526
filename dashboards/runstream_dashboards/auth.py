"""HTTP authentication (README "Security"): a `read` token on every route but /healthz and /login.

A request proves itself with the header `Authorization: Bearer TOKEN`, or with the session cookie
that `GET /login?token=TOKEN` sets (HttpOnly, SameSite=Strict; Secure over TLS), so a browser can
open the dashboard and the web UI's own requests carry the session. Without tokens configured,
everything is open (the server then only listens on loopback, or was started with --insecure).
Failures raise Unauthenticated or PermissionDenied, which errors.json_errors turns into 401 / 403 JSON.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import time
from collections import OrderedDict

from aiohttp import web

from runstream_dashboards.errors import Handler
from runstream_service.auth import Token, TokenTable, bearer, require_read
from runstream_service.errors import Unauthenticated

COOKIE = "runstream_session"
SESSION_SECONDS = 7 * 24 * 3600
MAX_SESSIONS = 10_000
OPEN_PATHS = frozenset({"/healthz", "/login", "/logout"})


class Sessions:
    """Server-side sessions: the cookie holds a random id; only its SHA-256 is kept, with the token."""

    def __init__(self) -> None:
        self._by_digest: OrderedDict[bytes, tuple[Token, float]] = OrderedDict()

    @staticmethod
    def _digest(session_id: str) -> bytes:
        return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()

    def create(self, token: Token) -> str:
        session_id = secrets.token_urlsafe(32)
        self._by_digest[self._digest(session_id)] = (token, time.monotonic() + SESSION_SECONDS)
        while len(self._by_digest) > MAX_SESSIONS:
            self._by_digest.popitem(last=False)
        return session_id

    def get(self, session_id: str | None) -> Token | None:
        if not session_id:
            return None
        digest = self._digest(session_id)
        found = self._by_digest.get(digest)
        if found is None:
            return None
        token, expires = found
        if time.monotonic() > expires:
            del self._by_digest[digest]
            return None
        return token

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._by_digest.pop(self._digest(session_id), None)


TOKENS_KEY: web.AppKey[TokenTable | None] = web.AppKey("tokens")
SESSIONS_KEY: web.AppKey[Sessions] = web.AppKey("sessions")

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runstream: sign in</title>
<style>body{{font:15px system-ui,sans-serif;max-width:28em;margin:4em auto;padding:0 1em}}
input{{font:inherit;width:100%;padding:.4em;margin:.5em 0;box-sizing:border-box}}</style></head>
<body><h1>runstream</h1><p>{message}</p>
<form method="get" action="/login"><label>Token with the scope <code>read</code>
<input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Open the dashboard</button></form></body></html>
"""


def _token_of(request: web.Request) -> tuple[str | None, Token | None]:
    """(what was presented, how, its entry or None); the header wins over the cookie."""
    tokens = request.app[TOKENS_KEY]
    assert tokens is not None
    presented = bearer(request.headers.get("Authorization"))
    if presented is not None:
        return "header", tokens.lookup(presented)
    session = request.cookies.get(COOKIE)
    if session:
        return "cookie", request.app[SESSIONS_KEY].get(session)
    return None, None


def request_token(request: web.Request) -> Token | None:
    """The request's token entry (header or session), or None (no tokens configured, or none presented)."""
    if request.app[TOKENS_KEY] is None:
        return None
    return _token_of(request)[1]


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.app[TOKENS_KEY] is None or request.path in OPEN_PATHS:
        return await handler(request)
    how, token = _token_of(request)
    if how is None:
        raise Unauthenticated(
            "a token with the scope 'read' is required: send `Authorization: Bearer TOKEN`, "
            "or open /login in a browser",
        )
    if token is None:
        what = "unknown token" if how == "header" else "the session has expired or is unknown"
        raise Unauthenticated(f"{what}; send a valid `Authorization: Bearer TOKEN`, or sign in again at /login")
    require_read(token)
    return await handler(request)


async def login(request: web.Request) -> web.StreamResponse:
    """`GET /login?token=TOKEN`: check the token, set the session cookie, go to the dashboard."""
    tokens = request.app[TOKENS_KEY]
    if tokens is None:
        return web.Response(status=303, headers={"Location": "/"})
    presented = request.query.get("token")
    if not presented:
        body = LOGIN_PAGE.format(message="Sign in with a token from the server's token file.")
        return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})
    token = tokens.lookup(presented)
    if token is None:
        raise Unauthenticated("unknown token; check it against the server's token file")
    require_read(token)
    response = web.Response(
        status=303, headers={"Location": "/", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )
    response.set_cookie(
        COOKIE,
        request.app[SESSIONS_KEY].create(token),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[SESSIONS_KEY].drop(request.cookies.get(COOKIE))
    response = web.Response(
        text=LOGIN_PAGE.format(message=html.escape("Signed out.")),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )
    response.del_cookie(COOKIE, path="/")
    return response


def setup(app: web.Application, tokens: TokenTable | None) -> None:
    """Register the login routes and the tokens; add `require_token` to the app's middlewares."""
    app[TOKENS_KEY] = tokens
    app[SESSIONS_KEY] = Sessions()
    app.router.add_get("/login", login)
    app.router.add_get("/logout", logout)
