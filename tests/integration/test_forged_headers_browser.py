"""The same attacks from a real browser (Debian's Chromium, headless): what Chromium itself sends.

A page of another site (served here on `localhost:OTHER_PORT`, a different site from `127.0.0.1:PORT`)
sends a `text/plain` POST and opens a WebSocket to the server; a page reached through a rebound name
(Chromium's resolver maps `rebound.example` to 127.0.0.1) asks for the dashboard. The server's own
page (same origin) does the same things and succeeds. Skipped without Chromium, unless
RUNSTREAM_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support import ServerProcess

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
REBOUND = "rebound.example"

# What a hostile page does: a form-like POST (no preflight) and a WebSocket, without reading answers.
ATTACK = """async (base) => {
  await fetch(base + '/visdom/env/ENV', {method: 'POST', mode: 'no-cors', body: '{}',
                                           headers: {'Content-Type': 'text/plain'}}).catch(() => null);
  const sql = await fetch(base + '/api/sql', {method: 'POST', body: JSON.stringify({sql: 'SELECT 1'}),
                                               headers: {'Content-Type': 'text/plain'}})
    .then((r) => r.status).catch(() => 'blocked');
  const socket = await new Promise((resolve) => {
    const ws = new WebSocket(base.replace('http', 'ws') + '/visdom/socket');
    ws.onopen = () => { ws.close(); resolve('open'); };
    ws.onerror = () => resolve('refused');
    setTimeout(() => resolve('timeout'), 5000);
  });
  return {sql, socket};
}"""


class _OtherSite(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another site</title><p>hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = os.environ.get("RUNSTREAM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        if os.environ.get("RUNSTREAM_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is not installed (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"]
        browser = playwright.chromium.launch(executable_path=executable, args=args)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def other_site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _OtherSite)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _envs(server: ServerProcess) -> set[str]:
    with urllib.request.urlopen(f"{server.http_url}/api/visdom/envs", timeout=10) as reply:
        return {env["env"] for env in json.load(reply)["envs"]}


def test_another_sites_page_cannot_act_and_the_servers_own_page_can(
    chromium: Any, other_site: str, tmp_path: Path
) -> None:
    with ServerProcess(tmp_path / "data") as server:
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.goto(other_site)
            outcome = page.evaluate(ATTACK.replace("ENV", "from_another_site"), server.http_url)
            assert outcome == {"sql": "blocked", "socket": "refused"}  # the answer is never readable either
            assert "from_another_site" not in _envs(server)
            log = server.log()
            assert "refused POST /visdom/env/from_another_site" in log  # it reached the server, which refused it
            assert "refused POST /api/sql" in log and "refused GET /visdom/socket" in log

            page.goto(server.http_url + "/healthz")  # the server's own origin
            outcome = page.evaluate(ATTACK.replace("ENV", "from_its_own_page"), server.http_url)
            assert outcome == {"sql": 200, "socket": "open"}
            assert "from_its_own_page" in _envs(server)

            rebound = page.goto(f"http://{REBOUND}:{server.http_port}/healthz")
            assert rebound is not None and rebound.status == 403
            assert "DNS rebinding" in json.loads(rebound.text())["error"]
        finally:
            context.close()
