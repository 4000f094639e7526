"""Bad input against the live Visdom endpoint: each gets a clear 4xx (or Visdom's own answer), the
server keeps serving, and what was stored before is unchanged afterwards.
"""

from __future__ import annotations

import copy
import json
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from runstream_service.launcher import LocalServer

ENDPOINTS = ("events", "update", "close", "win_exists", "win_data", "win_hash", "delete_env", "fork_env", "env_state")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    root = tmp_path_factory.mktemp("visdom-fuzz")
    process = LocalServer(root / "data", log_path=root / "server.log", visdom=True).start()
    yield process
    process.close()


def post(server: LocalServer, endpoint: str, body: bytes | str | dict[str, Any]) -> requests.Response:
    data = json.dumps(body) if isinstance(body, dict) else body
    return requests.post(f"http://127.0.0.1:{server.visdom_port}/{endpoint}", data=data, timeout=30)


def line(env: str, win: str, x: list[Any], y: list[Any]) -> dict[str, Any]:
    trace = {"type": "scatter", "mode": "lines", "name": "1", "x": x, "y": y, "marker": {"size": 3}}
    return {"data": [trace], "win": win, "eid": env, "layout": {}, "opts": {}}


def stored(server: LocalServer, env: str) -> str:
    reply = post(server, "win_data", {"eid": env, "win": None})
    assert reply.status_code == 200
    return reply.text


@pytest.fixture(scope="module")
def kept(server: LocalServer) -> tuple[str, str]:
    """An env with a line, a heatmap and a text window, and its stored JSON."""
    env = "fuzz_kept"
    assert post(server, "events", line(env, "line", [0.0, 1.0, 2.0], [3.0, 4.0, 5.0])).text == "line"
    heat = {"data": [{"type": "heatmap", "z": [[1.0, 2.0], [3.0, 4.0]], "x": None, "y": None}], "win": "heat"}
    assert post(server, "events", {**heat, "eid": env, "layout": {}, "opts": {}}).text == "heat"
    text = {"data": [{"type": "text", "content": "hi"}], "win": "text", "eid": env, "opts": {}}
    assert post(server, "events", text).text == "text"
    return env, stored(server, env)


def error_of(reply: requests.Response, status: int) -> str:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["status"] == status
    return str(body["error"])


def test_malformed_json(server: LocalServer, kept: tuple[str, str]) -> None:
    for endpoint in ENDPOINTS:
        assert "not valid JSON" in error_of(post(server, endpoint, b'{"win": "x", '), 400)
        assert "JSON object" in error_of(post(server, endpoint, b"[1, 2]"), 400)
        assert "UTF-8" in error_of(post(server, endpoint, b'{"a": "\xff"}'), 400)
    assert stored(server, kept[0]) == kept[1]


def test_oversize_body_is_refused_before_it_is_read(server: LocalServer, kept: tuple[str, str]) -> None:
    with socket.create_connection(("127.0.0.1", server.visdom_port), timeout=10) as sock:
        host = f"127.0.0.1:{server.visdom_port}".encode()  # a loopback Host: any other is refused first (403)
        sock.sendall(b"POST /events HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: 900000000\r\n\r\n{")
        answer = sock.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413") and "limit" in answer
    assert stored(server, kept[0]) == kept[1]


def test_unknown_env_and_window(server: LocalServer, kept: tuple[str, str]) -> None:
    update = {**line("nowhere", "nothing", [1.0], [1.0]), "append": False}
    assert "does not exist" in error_of(post(server, "update", update), 404)
    assert "doesn't exist" in error_of(post(server, "win_data", {"eid": "nowhere", "win": "nothing"}), 404)
    assert "does not exist" in error_of(post(server, "fork_env", {"prev_eid": "nowhere", "eid": "x"}), 404)
    assert post(server, "win_exists", {"eid": "nowhere", "win": "nothing"}).text == "false"
    assert post(server, "win_hash", {"eid": "nowhere", "win": "nothing"}).text == "false"
    assert post(server, "close", {"eid": "nowhere", "win": "nothing"}).status_code == 200
    assert stored(server, kept[0]) == kept[1]


def test_bare_nan_tokens_are_numbers(server: LocalServer) -> None:
    body = (
        b'{"data": [{"type": "surface", "z": [[NaN, 1.0], [Infinity, -Infinity]]}], "win": "surf", "eid": "fuzz_nan"}'
    )
    assert post(server, "events", body).text == "surf"
    z = json.loads(post(server, "win_data", {"eid": "fuzz_nan", "win": "surf"}).text)["content"]["data"][0]["z"]
    assert repr(z) == "[[nan, 1.0], [inf, -inf]]"
    nan_line = b'{"data": [{"type": "scatter", "x": [0, 1], "y": [NaN, 2]}], "win": "l", "eid": "fuzz_nan"}'
    assert post(server, "events", nan_line).text == "l"
    y = json.loads(post(server, "win_data", {"eid": "fuzz_nan", "win": "l"}).text)["content"]["data"][0]["y"]
    assert repr(y) == "[nan, 2.0]"


def test_mismatched_lengths_and_unknown_modes(server: LocalServer, kept: tuple[str, str]) -> None:
    env = kept[0]
    assert "2 x, 3 y" in error_of(post(server, "events", line(env, "bad", [0.0, 1.0], [1.0, 2.0, 3.0])), 400)
    append = {**line(env, "line", [9.0, 10.0], [1.0]), "append": True}
    assert "as many" in error_of(post(server, "update", append), 400)
    heat_rows = {"data": [{"type": "heatmap", "z": [[1.0, 2.0, 3.0]]}], "win": "heat", "eid": env}
    row = {**heat_rows, "append": True, "updateDir": "appendRow"}
    assert "columns" in error_of(post(server, "update", row), 400)
    assert "updateDir" in error_of(post(server, "update", {**row, "updateDir": "sideways"}), 400)
    text_as_numbers = {"data": [{"type": "text", "content": 5}], "win": "text", "eid": env, "append": True}
    assert "string" in error_of(post(server, "update", text_as_numbers), 400)
    assert stored(server, kept[0]) == kept[1]


def _mutations(rng: random.Random, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    junk: list[Any] = [None, 0, -1, 1e308, "", "x" * 600, [], {}, [None], [[1, "a"]], True, {"type": 3}]
    for _ in range(40):
        msg = copy.deepcopy(message)
        target: Any = msg
        path = []
        while isinstance(target, (dict, list)) and target and rng.random() < 0.7:
            key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
            path.append(key)
            if not isinstance(target[key], (dict, list)) or rng.random() < 0.4:
                break
            target = target[key]
        if path and isinstance(target, (dict, list)):
            key = path[-1]
            if isinstance(target, dict) and rng.random() < 0.3:
                target.pop(key, None)
            else:
                try:
                    target[key] = rng.choice(junk)
                except (IndexError, KeyError):
                    pass
        yield msg


def test_random_mutations_never_fail_the_server(server: LocalServer, kept: tuple[str, str]) -> None:
    rng = random.Random(12)
    env = "fuzz_random"
    valid = {
        "events": line(env, "w", [0.0, 1.0], [1.0, 2.0]),
        "update": {**line(env, "w", [2.0], [3.0]), "append": True, "name": "1"},
        "win_data": {"eid": env, "win": "w"},
        "close": {"eid": env, "win": "zz"},
        "fork_env": {"prev_eid": env, "eid": env + "_copy"},
        "win_exists": {"eid": env, "win": "w"},
    }
    for endpoint, message in valid.items():
        for msg in _mutations(rng, message):
            reply = post(server, endpoint, msg)
            assert reply.status_code < 500, (endpoint, msg, reply.text)
    assert requests.get(f"{server.http_url}/healthz", timeout=10).json()["status"] == "ok"
    assert stored(server, kept[0]) == kept[1]
