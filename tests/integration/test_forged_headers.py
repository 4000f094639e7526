"""No other web page can act on the server: forged Host and Origin headers sent to every route of both apps.

The routes are read from the routers of a live server's two apps (the HTTP port's, with the Visdom protocol
under /visdom, and the Visdom port's) when the test runs, so routes added later are covered without a
change here. That server runs in this process (runstream_service.server.Server on free loopback ports, the
same object `runstream serve` runs) so that its apps can be read; the flags (--allowed-hosts, a
non-loopback address) are checked against `runstream serve` processes.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websocket
from aiohttp import web

from runstream_service.server import Server
from runstream_service.settings import ServerSettings
from support import ServerProcess, free_port

TIMEOUT = 20.0
ACTING_METHODS = ("POST", "PUT", "PATCH", "DELETE")
FORGED_HOSTS = ("evil.example", "localhost.evil.example", "127.0.0.1.evil.example")
FOREIGN_ORIGIN = "http://evil.example"


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    routes: tuple[tuple[str, str], ...]  # (method, a path that the route matches)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def error(self) -> str:
        payload = json.loads(self.body)
        assert payload["status"] == self.status
        return str(payload["error"])


def routes_of(app: web.Application) -> tuple[tuple[str, str], ...]:
    """Every (method, path) the app's router serves; path parameters filled with `x`."""
    found: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        path = re.sub(r"\{[^}]*\}", "x", resource.canonical)
        if isinstance(resource, web.StaticResource):
            path = path.rstrip("/") + "/x"
        for route in resource:
            methods = ("GET", *ACTING_METHODS) if route.method == "*" else (route.method,)
            found.update((method, path) for method in methods)
    return tuple(sorted(found))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Listener]]:
    """A live Server with the defaults (loopback, no tokens), its HTTP and Visdom ports and their routes."""
    data = tmp_path_factory.mktemp("forged") / "data"
    settings = ServerSettings(data=data, grpc="127.0.0.1:0", http="127.0.0.1:0", visdom="127.0.0.1:0")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Server(settings)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(TIMEOUT)
        apps = {"http": server._http, "visdom": server._visdom_runner}
        listeners = {
            "http": Listener("http", server.http_port, routes_of(apps["http"].app)),  # type: ignore[union-attr]
            "visdom": Listener("visdom", server.visdom_port, routes_of(apps["visdom"].app)),  # type: ignore[union-attr]
        }
        yield listeners
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


def send(port: int, method: str, path: str, headers: dict[str, str]) -> Answer:
    """One request with exactly these headers (Host included); the body only when the status is an error,
    so that a stream (server-sent events) the request opened is not read."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        body = b"{}" if method in ACTING_METHODS else None
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Type", "text/plain")  # a "simple" request: no CORS preflight
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        reply = connection.getresponse()
        content = reply.read() if reply.status >= 400 and method != "HEAD" else b""
        return Answer(reply.status, content)
    finally:
        connection.close()


def own_host(listener: Listener) -> str:
    return f"127.0.0.1:{listener.port}"


def test_both_apps_have_their_routes(live: dict[str, Listener]) -> None:
    http_routes = {path for _, path in live["http"].routes}
    assert {"/api/sql", "/api/runs", "/", "/healthz", "/visdom/vis_socket", "/visdom/socket"} <= http_routes
    assert {"/events", "/vis_socket", "/socket", "/delete_env"} <= {path for _, path in live["visdom"].routes}


@pytest.mark.parametrize("listener_name", ["http", "visdom"])
def test_a_forged_host_is_refused_on_every_route(live: dict[str, Listener], listener_name: str) -> None:
    listener = live[listener_name]
    for method, path in listener.routes:
        for forged in FORGED_HOSTS:
            answer = send(listener.port, method, path, {"Host": f"{forged}:{listener.port}"})
            assert answer.status == 403, (method, path, forged, answer)
            if method != "HEAD":
                assert "DNS rebinding" in answer.error() and f"--allowed-hosts {forged}" in answer.error()


@pytest.mark.parametrize("listener_name", ["http", "visdom"])
def test_a_foreign_origin_is_refused_on_every_route_that_acts(live: dict[str, Listener], listener_name: str) -> None:
    listener = live[listener_name]
    acting = [(method, path) for method, path in listener.routes if method in ACTING_METHODS]
    assert acting
    for method, path in acting:
        for origin in (FOREIGN_ORIGIN, "null", f"http://localhost:{listener.port + 1}"):
            answer = send(listener.port, method, path, {"Host": own_host(listener), "Origin": origin})
            assert answer.status == 403, (method, path, origin, answer)
            assert f"Origin {origin}" in answer.error()
        cross_site = {"Host": own_host(listener), "Sec-Fetch-Site": "cross-site"}
        answer = send(listener.port, method, path, cross_site)
        assert answer.status == 403 and "Sec-Fetch-Site: cross-site" in answer.error(), (method, path)


@pytest.mark.parametrize("listener_name", ["http", "visdom"])
def test_a_cross_site_websocket_handshake_is_refused_on_every_get_route(
    live: dict[str, Listener], listener_name: str
) -> None:
    listener = live[listener_name]
    handshake = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
    handshake["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
    for method, path in listener.routes:
        if method != "GET":
            continue
        answer = send(listener.port, method, path, {"Host": own_host(listener), "Origin": FOREIGN_ORIGIN, **handshake})
        assert answer.status == 403 and "WebSocket" in answer.error(), (path, answer)


@pytest.mark.parametrize("listener_name", ["http", "visdom"])
def test_plain_reads_and_clients_without_origin_are_not_refused(live: dict[str, Listener], listener_name: str) -> None:
    """Cross-site GETs read (links into the dashboard); nothing is refused to a client that sends no Origin.

    No route answers 403 without tokens for another reason, so any 403 here would be the check's."""
    listener = live[listener_name]
    for method, path in listener.routes:
        if path in ("/login", "/logout"):
            continue  # signing in or out is not a plain read; below
        if method in ("GET", "HEAD"):
            headers = {"Host": own_host(listener), "Origin": FOREIGN_ORIGIN, "Sec-Fetch-Site": "cross-site"}
            assert send(listener.port, method, path, headers).status != 403, (method, path)
        assert send(listener.port, method, path, {"Host": own_host(listener)}).status != 403, (method, path)


def test_signing_in_or_out_from_another_site_is_refused(live: dict[str, Listener]) -> None:
    listener = live["http"]
    cross_site = {"Host": own_host(listener), "Sec-Fetch-Site": "cross-site"}
    assert send(listener.port, "GET", "/login?token=" + "t" * 20, cross_site).status == 403
    assert send(listener.port, "GET", "/logout", cross_site).status == 403
    assert send(listener.port, "GET", "/login", cross_site).status != 403  # the form alone is a plain read


@pytest.mark.parametrize("listener_name", ["http", "visdom"])
@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_loopback_host_names_are_answered(live: dict[str, Listener], listener_name: str, name: str) -> None:
    listener = live[listener_name]
    path = "/healthz" if listener_name == "http" else "/"
    assert send(listener.port, "GET", path, {"Host": f"{name}:{listener.port}"}).status == 200


def test_the_attack_of_the_issue_is_refused_and_the_servers_own_page_still_works(live: dict[str, Listener]) -> None:
    """The issue's two requests: a text/plain POST of SQL from http://evil.example, and a rebound Host."""
    listener = live["http"]
    query = json.dumps({"sql": "SELECT count(*) AS n FROM runs"})

    def post_sql(headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=TIMEOUT)
        try:
            connection.request("POST", "/api/sql", body=query, headers={"Content-Type": "text/plain", **headers})
            reply = connection.getresponse()
            return reply.status, reply.read()
        finally:
            connection.close()

    assert post_sql({"Origin": FOREIGN_ORIGIN})[0] == 403
    assert post_sql({"Host": f"evil.example:{listener.port}"})[0] == 403
    status, body = post_sql({"Origin": f"http://127.0.0.1:{listener.port}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and json.loads(body)["rows"] == [[0]]
    assert post_sql({})[0] == 200  # the CLI, the SDK, curl


def test_a_refused_request_changes_nothing(live: dict[str, Listener]) -> None:
    listener = live["visdom"]
    own = {"Host": own_host(listener)}
    assert send(listener.port, "POST", "/env/kept", own).status == 200
    answer = send(listener.port, "POST", "/delete_env", {**own, "Origin": FOREIGN_ORIGIN})
    assert answer.status == 403
    http = live["http"]
    status, envs = _get_json(http.port, "/api/visdom/envs")
    assert status == 200 and "kept" in {env["env"] for env in envs["envs"]}


def _get_json(port: int, path: str) -> tuple[int, dict[str, list[dict[str, object]]]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


@pytest.mark.parametrize(("listener_name", "prefix"), [("visdom", ""), ("http", "/visdom")])
@pytest.mark.parametrize("socket_path", ["/vis_socket", "/socket"])
def test_the_visdom_websockets_refuse_other_sites_and_take_the_client(
    live: dict[str, Listener], listener_name: str, prefix: str, socket_path: str
) -> None:
    port = live[listener_name].port
    url = f"ws://127.0.0.1:{port}{prefix}{socket_path}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=TIMEOUT, origin=FOREIGN_ORIGIN)
    assert refused.value.status_code == 403
    ws = websocket.create_connection(url, timeout=TIMEOUT)  # the visdom client's own: Origin http://127.0.0.1:PORT
    try:
        assert json.loads(ws.recv())["command"] in ("alive", "register")
    finally:
        ws.close()


# -- the flags, against `runstream serve` --------------------------------------------------------------


def _status(port: int, host: str, method: str = "GET", path: str = "/healthz") -> int:
    return send(port, method, path, {"Host": host}).status


def test_allowed_hosts_adds_names_on_both_ports(tmp_path: Path) -> None:
    visdom_port = free_port()
    args = ("--visdom", f"127.0.0.1:{visdom_port}", "--allowed-hosts", "runstream.example.org,10.1.2.3")
    with ServerProcess(tmp_path / "data", args) as server:
        for port, path in ((server.http_port, "/healthz"), (visdom_port, "/")):
            assert _status(port, f"runstream.example.org:{port}", path=path) == 200
            assert _status(port, "RUNSTREAM.example.org", path=path) == 200
            assert _status(port, f"10.1.2.3:{port}", path=path) == 200
            assert _status(port, f"localhost:{port}", path=path) == 200
            assert _status(port, f"evil.example:{port}", path=path) == 403
        proxied = {"Host": f"127.0.0.1:{server.http_port}", "Origin": "https://runstream.example.org"}
        assert send(server.http_port, "POST", "/api/sql", proxied).status == 400  # past the check: a bad body


def test_a_server_bound_elsewhere_answers_any_host_unless_narrowed(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "open")
    server.extra_args = ("--http", f"0.0.0.0:{server.http_port}", "--insecure")
    with server:
        assert _status(server.http_port, f"evil.example:{server.http_port}") == 200
        assert _status(server.http_port, "team-server") == 200
        acting = {"Host": "team-server:8080", "Origin": "http://evil.example"}
        assert send(server.http_port, "POST", "/api/sql", acting).status == 403  # other sites still may not act
    narrowed = ServerProcess(tmp_path / "narrowed")
    narrowed.extra_args = ("--http", f"0.0.0.0:{narrowed.http_port}", "--insecure", "--allowed-hosts", "team-server")
    with narrowed:
        assert _status(narrowed.http_port, "team-server:8080") == 200
        assert _status(narrowed.http_port, f"127.0.0.1:{narrowed.http_port}") == 200  # the container's healthcheck
        assert _status(narrowed.http_port, f"evil.example:{narrowed.http_port}") == 403


def test_an_allowed_host_that_is_not_a_name_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "runstream_service", "serve", "--data", str(tmp_path / "data")]
    done = subprocess.run(
        [*command, "--allowed-hosts", "https://runstream.example.org"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--allowed-hosts: 'https://runstream.example.org' is not a host name" in done.stderr
