"""The decision of runstream_dashboards.origin as a table: which Host names a listener answers, and which
browser requests from other sites it refuses. The live check on every route is
tests/integration/test_forged_headers.py."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from runstream_dashboards.errors import json_errors
from runstream_dashboards.origin import (
    LOOPBACK_ONLY,
    Facts,
    HostPolicy,
    guard,
    parse_allowed_hosts,
    policy_for,
    refusal,
)

LOCAL = "127.0.0.1:8080"
TEAM = policy_for("127.0.0.1", ("runstream.example.org", "10.0.0.5"))
OPEN = policy_for("0.0.0.0")
NARROWED = policy_for("0.0.0.0", ("runstream.example.org",))


@pytest.mark.parametrize(
    ("bind", "allowed", "any_host"),
    [
        ("127.0.0.1", (), False),
        ("localhost", (), False),
        ("::1", (), False),
        ("0.0.0.0", (), True),
        ("::", (), True),
        ("10.0.0.5", (), True),
        ("0.0.0.0", ("runstream.example.org",), False),
        ("127.0.0.1", ("runstream.example.org",), False),
    ],
)
def test_a_listener_answers_any_host_only_when_bound_elsewhere_without_allowed_hosts(
    bind: str, allowed: tuple[str, ...], any_host: bool
) -> None:
    assert policy_for(bind, allowed).any_host is any_host


@pytest.mark.parametrize(
    ("policy", "host", "refused"),
    [
        (LOOPBACK_ONLY, "127.0.0.1:8080", False),
        (LOOPBACK_ONLY, "localhost:8080", False),
        (LOOPBACK_ONLY, "LocalHost.:8080", False),
        (LOOPBACK_ONLY, "[::1]:8080", False),
        (LOOPBACK_ONLY, "127.0.0.2", False),
        (LOOPBACK_ONLY, "localhost", False),
        (LOOPBACK_ONLY, None, False),  # no Host: not a browser (browsers always send it), so no rebinding
        (LOOPBACK_ONLY, "evil.example:8080", True),
        (LOOPBACK_ONLY, "evil.example", True),
        (LOOPBACK_ONLY, "localhost.evil.example:8080", True),
        (LOOPBACK_ONLY, "127.0.0.1.evil.example", True),
        (LOOPBACK_ONLY, "10.0.0.5:8080", True),
        (LOOPBACK_ONLY, "[::ffff:7f00:1]:8080", True),
        (LOOPBACK_ONLY, "", True),
        (LOOPBACK_ONLY, "127.0.0.1:80a", True),
        (LOOPBACK_ONLY, "[::1", True),
        (LOOPBACK_ONLY, "::1", True),  # IPv6 in Host must be bracketed
        (TEAM, "runstream.example.org", False),
        (TEAM, "RUNSTREAM.example.org:443", False),
        (TEAM, "10.0.0.5:8080", False),
        (TEAM, "localhost:8080", False),
        (TEAM, "example.org", True),
        (TEAM, "evil.runstream.example.org", True),
        (OPEN, "evil.example:8080", False),
        (OPEN, "anything at all", False),
        (NARROWED, "runstream.example.org:8080", False),
        (NARROWED, "127.0.0.1:8080", False),  # a container's own healthcheck
        (NARROWED, "evil.example:8080", True),
    ],
)
def test_host_names(policy: HostPolicy, host: str | None, refused: bool) -> None:
    reason = refusal(policy, Facts("GET", "/api/runs", host))
    assert (reason is not None) is refused
    if refused:
        assert reason is not None and "--allowed-hosts" in reason and "DNS rebinding" in reason


@pytest.mark.parametrize(
    ("facts", "refused"),
    [
        # Clients without Origin (SDK, CLI, visdom client, curl): never refused.
        (Facts("POST", "/api/sql", LOCAL), False),
        (Facts("DELETE", "/api/projector/projections/j", LOCAL), False),
        (Facts("GET", "/vis_socket", LOCAL, upgrade=True), False),
        # The server's own page.
        (Facts("POST", "/api/sql", LOCAL, origin="http://127.0.0.1:8080"), False),
        (Facts("POST", "/api/sql", LOCAL, origin="http://127.0.0.1:8080", fetch_site="same-origin"), False),
        (Facts("GET", "/socket", "127.0.0.1:8097", origin="http://127.0.0.1:8097", upgrade=True), False),
        (Facts("POST", "/api/sql", "localhost", origin="http://localhost"), False),
        (Facts("POST", "/api/sql", "localhost:80", origin="http://localhost"), False),
        # Another site: refused unless a plain read.
        (Facts("POST", "/api/sql", LOCAL, origin="http://evil.example"), True),
        (Facts("POST", "/api/sql", LOCAL, origin="http://evil.example:8080"), True),
        (Facts("POST", "/api/sql", LOCAL, origin="null"), True),
        (Facts("POST", "/api/sql", LOCAL, origin="garbage"), True),
        (Facts("POST", "/api/sql", LOCAL, origin="http://127.0.0.1:9999"), True),  # another port: another origin
        (Facts("POST", "/api/sql", LOCAL, origin="https://127.0.0.1:8080"), False),  # TLS: same host and port
        (Facts("POST", "/api/sql", LOCAL, origin="http://localhost:8080"), True),  # another origin, same machine
        (Facts("POST", "/api/sql", "localhost", origin="https://localhost"), False),  # Host without port: the scheme's
        (Facts("POST", "/api/sql", "localhost:80", origin="https://localhost"), True),  # 443 is not 80
        (Facts("PUT", "/api/x", LOCAL, origin="http://evil.example"), True),
        (Facts("DELETE", "/api/projector/projections/j", LOCAL, origin="http://evil.example"), True),
        (Facts("OPTIONS", "/api/sql", LOCAL, origin="http://evil.example"), True),
        (Facts("POST", "/api/sql", LOCAL, fetch_site="cross-site"), True),
        (Facts("POST", "/api/sql", LOCAL, fetch_site="Cross-Site"), True),
        (Facts("POST", "/api/sql", LOCAL, fetch_site="same-site"), False),
        (Facts("POST", "/api/sql", LOCAL, origin="http://127.0.0.1:8080", fetch_site="cross-site"), True),
        (Facts("GET", "/vis_socket", LOCAL, origin="http://evil.example", upgrade=True), True),
        (Facts("GET", "/socket", LOCAL, fetch_site="cross-site", upgrade=True), True),
        (Facts("GET", "/login", LOCAL, fetch_site="cross-site", signs_in=True), True),
        (Facts("GET", "/logout", LOCAL, origin="http://evil.example", signs_in=True), True),
        # Plain reads from another site: allowed (links into the dashboard; the page cannot read the answer).
        (Facts("GET", "/", LOCAL, fetch_site="cross-site"), False),
        (Facts("GET", "/api/runs", LOCAL, origin="http://evil.example", fetch_site="cross-site"), False),
        (Facts("HEAD", "/api/image", LOCAL, fetch_site="cross-site"), False),
        (Facts("GET", "/login", LOCAL, fetch_site="cross-site"), False),  # the sign-in form itself
    ],
)
def test_requests_from_other_sites(facts: Facts, refused: bool) -> None:
    assert (refusal(LOOPBACK_ONLY, facts) is not None) is refused


def test_an_allowed_host_is_the_servers_own_page_behind_a_proxy_that_rewrites_host() -> None:
    behind_proxy = Facts("POST", "/api/sql", LOCAL, origin="https://runstream.example.org")
    assert refusal(TEAM, behind_proxy) is None
    assert refusal(LOOPBACK_ONLY, behind_proxy) is not None
    assert refusal(TEAM, Facts("POST", "/api/sql", LOCAL, origin="https://evil.example")) is not None


def test_a_server_bound_elsewhere_still_refuses_other_sites() -> None:
    assert refusal(OPEN, Facts("POST", "/api/sql", "team:8080", origin="http://team:8080")) is None
    assert refusal(OPEN, Facts("POST", "/api/sql", "team:8080", origin="http://evil.example")) is not None
    assert refusal(OPEN, Facts("POST", "/api/sql", "team:8080", fetch_site="cross-site")) is not None


def test_refusals_say_why() -> None:
    reason = refusal(LOOPBACK_ONLY, Facts("POST", "/api/sql", LOCAL, origin="http://evil.example"))
    assert reason is not None and "Origin http://evil.example" in reason and "POST /api/sql" in reason
    reason = refusal(LOOPBACK_ONLY, Facts("GET", "/socket", LOCAL, origin="http://evil.example", upgrade=True))
    assert reason is not None and "WebSocket" in reason
    reason = refusal(LOOPBACK_ONLY, Facts("POST", "/api/sql", LOCAL, fetch_site="cross-site"))
    assert reason is not None and "Sec-Fetch-Site: cross-site" in reason
    reason = refusal(LOOPBACK_ONLY, Facts("GET", "/", "evil.example:8080"))
    assert reason is not None and "'evil.example:8080'" in reason and "--allowed-hosts evil.example" in reason


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("runstream.example.org", ("runstream.example.org",)),
        (" A.example , b.example.,a.example", ("a.example", "b.example")),
        ("10.0.0.5,[::1],FE80::1", ("10.0.0.5", "::1", "fe80::1")),
        ("runstream_server", ("runstream_server",)),
    ],
)
def test_allowed_hosts_are_normalised(text: str, names: tuple[str, ...]) -> None:
    assert parse_allowed_hosts(text) == names


@pytest.mark.parametrize("text", ["", "a.example,", "http://a.example", "a.example:8080", "a b", "-a.example", "*"])
def test_allowed_hosts_that_are_not_names_are_refused_with_the_entry(text: str) -> None:
    with pytest.raises(ValueError, match="--allowed-hosts: .* is not a host name"):
        parse_allowed_hosts(text)


def test_the_middleware_answers_403_json_and_never_runs_the_handler() -> None:
    ran: list[str] = []

    async def act(request: web.Request) -> web.Response:
        ran.append(request.method)
        return web.Response(text="done")

    app = web.Application(middlewares=[json_errors, guard(LOOPBACK_ONLY)])
    app.router.add_post("/act", act)
    app.router.add_get("/act", act)

    async def go() -> None:
        async with TestClient(TestServer(app)) as client:
            await exchange(client)

    async def exchange(client: TestClient[web.Request, web.Application]) -> None:
        refused = await client.post("/act", data="{}", headers={"Origin": "http://evil.example"})
        assert refused.status == 403
        body = await refused.json()
        assert body["status"] == 403 and "another site" in body["error"]
        forged = await client.get("/act", headers={"Host": "evil.example"})
        assert forged.status == 403 and "DNS rebinding" in (await forged.json())["error"]
        unknown = await client.post("/nowhere", headers={"Host": "evil.example"})
        assert unknown.status == 403  # routes or not, the check comes first
        assert ran == []
        assert (await client.post("/act", data="{}")).status == 200
        assert (await client.get("/act", headers={"Origin": "http://evil.example"})).status == 200
        assert ran == ["POST", "GET"]

    asyncio.run(go())
