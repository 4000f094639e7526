"""No other web page can act on the server: the Host a request names, and the site a browser sent it from.

The threat is a page on any site the user visits, running in the user's browser, which can reach the
server on 127.0.0.1 or on the team's network even though the attacker cannot.

- DNS rebinding: the page's own name (evil.example) is made to resolve to the server's address; the
  browser then treats the server's answers as the page's own and lets it read them. Such a request
  names the attacker's host in its `Host` header, so a listener bound to loopback answers only the
  loopback names (localhost, 127.0.0.0/8, ::1) and the names given with `--allowed-hosts`. A listener
  bound elsewhere (tokens or --insecure, as in docker-compose) is reached under names we cannot
  guess, so it answers any Host unless `--allowed-hosts` narrows it (to those names and loopback's).
- Cross-site requests: a page can send GETs, form POSTs and `text/plain` POSTs (no CORS preflight) to
  any address, and open WebSockets, without reading the answers. Browsers mark them with `Origin` (on
  every request but GET and HEAD, and on every WebSocket handshake) and `Sec-Fetch-Site`. Anything but
  a plain read is refused when the Origin names another host or port than the request's `Host` (or
  a name of `--allowed-hosts`, for a proxy that rewrites Host), or when Sec-Fetch-Site is
  `cross-site`. A plain read is a GET or HEAD that is neither a WebSocket handshake nor a sign-in or
  sign-out (`/login?token=...`, `/logout`).
- Cross-site plain reads are allowed: links into the dashboard from chat, wikis or mail are cross-site
  GETs. A foreign page cannot read their answers (the server never sends CORS headers), and DNS
  rebinding, the way around that, is stopped by the Host check above.
- Clients other than browsers (the SDK, the CLI, the visdom client, curl) send no Origin and are not
  affected; the visdom client's WebSocket sends an Origin naming the server itself, which matches.

`refusal()` is the pure decision over a request's `Facts`; `guard()` the aiohttp middleware that every
app of the server (the HTTP port's, the Visdom port's) puts in front of its routes. A refusal is a
`ForeignRequest`: 403 with a message that says why and what to do.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from runstream_dashboards.errors import Handler
from runstream_service.errors import RunstreamError
from runstream_service.settings import is_loopback

logger = logging.getLogger("runstream.http")

PLAIN_READ_METHODS = frozenset({"GET", "HEAD"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")


class ForeignRequest(RunstreamError):
    """A request addressed to a Host this server does not answer, or sent by a page of another site."""

    http_status = 403


@dataclass(frozen=True)
class HostPolicy:
    """The Host names one listener answers, and the names whose pages count as the server's own.

    `any_host`: every Host is answered (a listener bound to a non-loopback address without
    --allowed-hosts). `extra`: the --allowed-hosts names, answered besides loopback's, and trusted as
    Origins whatever their port (a reverse proxy may send its own Host while the page has the public one).
    """

    any_host: bool
    extra: frozenset[str] = frozenset()

    def answers(self, name: str) -> bool:
        return self.any_host or name in self.extra or is_loopback(name)

    def describe(self) -> str:
        names = ["localhost", "127.0.0.1", "[::1]", *sorted(self.extra)]
        return ", ".join(names)


LOOPBACK_ONLY = HostPolicy(any_host=False)


def policy_for(bind_host: str, allowed_hosts: Iterable[str] = ()) -> HostPolicy:
    """The policy of a listener bound to `bind_host`, with the (already normalised) --allowed-hosts."""
    extra = frozenset(allowed_hosts)
    return HostPolicy(any_host=not is_loopback(bind_host) and not extra, extra=extra)


def parse_allowed_hosts(text: str) -> tuple[str, ...]:
    """`--allowed-hosts HOST[,HOST...]` as normalised names; ValueError saying which entry is wrong."""
    names: list[str] = []
    for entry in text.split(","):
        name = _normal_name(entry)
        if name is None:
            raise ValueError(
                f"--allowed-hosts: {entry.strip()!r} is not a host name; give names such as runstream.example.org "
                "or 10.0.0.5, separated by commas, without scheme or port (the port is not checked)"
            )
        names.append(name)
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Facts:
    """What the decision reads of a request: method, path, and the headers that say where it comes from."""

    method: str
    path: str
    host: str | None  # the Host header as sent; None when absent
    origin: str | None = None
    fetch_site: str | None = None  # Sec-Fetch-Site
    upgrade: bool = False  # a WebSocket (or other protocol) handshake
    signs_in: bool = False  # /login with a token, /logout: a GET that changes the browser's session


def facts_of(request: web.Request) -> Facts:
    headers = request.headers
    return Facts(
        method=request.method,
        path=request.path,
        host=headers.get("Host"),
        origin=headers.get("Origin"),
        fetch_site=headers.get("Sec-Fetch-Site"),
        upgrade="Upgrade" in headers,
        signs_in=request.path == "/logout" or (request.path == "/login" and "token" in request.query),
    )


def refusal(policy: HostPolicy, facts: Facts) -> str | None:
    """Why `facts` is refused under `policy`, or None when it may go on to its route."""
    host = _split_host(facts.host) if facts.host is not None else None
    if facts.host is not None and not policy.any_host and (host is None or not policy.answers(host[0])):
        return (
            f"this server answers only requests addressed to {policy.describe()}, not to the Host "
            f"{facts.host!r} (a web page may be trying DNS rebinding). If you reach the server under that "
            f"name on purpose, start it with --allowed-hosts {host[0] if host else 'NAME'}"
        )
    if _plain_read(facts):
        return None
    if facts.origin is not None and not _own_origin(policy, facts.origin, host):
        what = "open a WebSocket" if facts.upgrade else f"send {facts.method} {facts.path}"
        return (
            f"a page of another site (Origin {facts.origin}) may not {what} here; only the server's own "
            "page may. Clients other than browsers send no Origin header"
        )
    if (facts.fetch_site or "").strip().lower() == "cross-site":
        return (
            f"the browser marked this {facts.method} {facts.path} as sent by another site (Sec-Fetch-Site: "
            "cross-site); other sites' pages may only read here"
        )
    return None


def guard(policy: HostPolicy) -> Middleware:
    """The middleware that refuses, with a 403 (`ForeignRequest`), what `refusal` refuses."""

    @web.middleware
    async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        reason = refusal(policy, facts_of(request))
        if reason is not None:
            logger.info(
                "refused %s %s from Host %r, Origin %r",
                request.method,
                request.path,
                request.headers.get("Host"),
                request.headers.get("Origin"),
            )
            raise ForeignRequest(reason)
        return await handler(request)

    return check_origin


def _plain_read(facts: Facts) -> bool:
    return facts.method.upper() in PLAIN_READ_METHODS and not facts.upgrade and not facts.signs_in


def _own_origin(policy: HostPolicy, origin: str, host: tuple[str, int | None] | None) -> bool:
    """Whether `origin` is the server's own page: the request's Host (same port), or an --allowed-hosts name."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    name = _normal_name(parts.hostname or "") if parts.hostname else None
    if name is None or scheme not in DEFAULT_PORTS:
        return False  # "null" (sandboxed frames, file: pages) and anything malformed is foreign
    if name in policy.extra:
        return True
    if host is None:
        return False
    host_name, host_port = host
    origin_port = port if port is not None else DEFAULT_PORTS[scheme]
    return name == host_name and origin_port == (host_port if host_port is not None else DEFAULT_PORTS[scheme])


@functools.lru_cache(maxsize=1024)  # every request's Host: the same few, parsed once (ipaddress is slow)
def _split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header as (normalised name, port or None); None when malformed."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[1:end], value[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        port_text = rest[1:]
    else:
        name, sep, port_text = value.rpartition(":")
        if not sep:
            name, port_text = value, ""
        elif not port_text.isdigit():
            return None
    normal = _normal_name(name)
    if normal is None:
        return None
    return normal, int(port_text) if port_text else None


@functools.lru_cache(maxsize=1024)
def _normal_name(text: str) -> str | None:
    """A host name lower-cased without its trailing dot, or an IP address in its canonical form."""
    name = text.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    name = name.removesuffix(".")
    return name if len(name) <= 253 and _HOSTNAME.fullmatch(name) else None


__all__ = ["LOOPBACK_ONLY", "Facts", "ForeignRequest", "HostPolicy", "guard", "parse_allowed_hosts", "policy_for"]
