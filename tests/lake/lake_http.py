"""The lake tests' HTTP reads of a running server: a JSON GET, and rows of POST /api/sql."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from runstream_service.launcher import LocalServer


def get(server: LocalServer, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}{path}", timeout=30) as reply:
        return json.loads(reply.read())


def sql_rows(server: LocalServer, query: str) -> list[list[Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/api/sql",
        data=json.dumps({"sql": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        rows: list[list[Any]] = json.loads(answer.read())["rows"]
    return rows
