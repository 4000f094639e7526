"""Visdom with --tokens: the unchanged client logs in with `password=TOKEN`; writes need write:visdom or
write:*, reads need read; without a valid login every endpoint refuses, on both mounts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import websocket

from runstream_service.launcher import LocalServer

visdom = pytest.importorskip("visdom")

TOKENS = {
    "read": "visdom-read-token-0123456789",
    "write:visdom": "visdom-write-token-0123456789",
    "write:*": "visdom-write-all-token-0123456789",
    "write:other": "visdom-write-other-token-0123456789",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    root = tmp_path_factory.mktemp("visdom-auth")
    tokens = root / "tokens"
    lines = [
        f"{TOKENS['read']} read",
        f"{TOKENS['write:visdom']} read,write:visdom",
        f"{TOKENS['write:*']} write:*",
        f"{TOKENS['write:other']} read,write:other",
    ]
    tokens.write_text("\n".join(lines) + "\n")
    process = LocalServer(root / "data", ["--tokens", str(tokens)], log_path=root / "server.log", visdom=True)
    yield process.start()
    process.close()


def login(server: LocalServer, token: str, **kwargs: object) -> object:
    options: dict[str, object] = {"port": server.visdom_port, "env": "auth", "raise_exceptions": True}
    return visdom.Visdom(username="someone", password=token, **{**options, **kwargs})


@pytest.mark.parametrize("scope", ["write:visdom", "write:*"])
def test_a_write_token_logs_in_and_writes(server: LocalServer, scope: str) -> None:
    vis = login(server, TOKENS[scope])
    assert vis.check_connection(timeout_seconds=5) and vis.socket_alive  # the cookie opens the websocket too
    win = vis.line(Y=np.array([1.0, 2.0]), X=np.array([0.0, 1.0]))
    assert vis.line(Y=np.array([3.0]), X=np.array([2.0]), win=win, update="append") == win
    if scope == "write:visdom":  # it has `read` too
        assert vis.win_exists(win) is True


def test_an_unknown_token_fails_the_login(server: LocalServer) -> None:
    with pytest.raises(RuntimeError, match="Authentication failed"):
        login(server, "not-a-token-0123456789")


@pytest.mark.parametrize("scope", ["read", "write:other"])
def test_a_token_without_write_visdom_may_read_but_not_write(server: LocalServer, scope: str) -> None:
    vis = login(server, TOKENS[scope], use_incoming_socket=scope == "read")
    refused = json.loads(vis.line(Y=np.array([1.0]), X=np.array([0.0]), win="refused"))
    assert refused["status"] == 403 and "write:visdom" in refused["error"]
    assert vis.win_exists("refused") is False
    assert isinstance(vis.get_env_list(), list)


def test_without_login_every_endpoint_refuses(server: LocalServer) -> None:
    for endpoint in ("events", "update", "close", "win_exists", "win_data", "win_hash", "env_state", "save"):
        reply = requests.post(f"http://127.0.0.1:{server.visdom_port}/{endpoint}", data="{}", timeout=10)
        assert reply.status_code == 401, endpoint
        assert "password=TOKEN" in reply.json()["error"]
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(f"ws://127.0.0.1:{server.visdom_port}/vis_socket", timeout=10)
    # A client that does not log in gets no answer it could mistake for one.
    vis = visdom.Visdom(port=server.visdom_port, env="auth", raise_exceptions=True, use_incoming_socket=False)
    assert vis.win_exists("anything") is None


def test_the_http_port_mount_checks_the_same_login(server: LocalServer) -> None:
    vis = login(server, TOKENS["write:visdom"], port=server.http_port, base_url="/visdom")
    win = vis.line(Y=np.array([1.0, 2.0]), X=np.array([0.0, 1.0]))
    assert vis.win_exists(win) is True
    reply = requests.post(f"{server.http_url}/visdom/win_exists", data='{"win": "x"}', timeout=10)
    assert reply.status_code == 401
    # The web UI's read API is the dashboard's: a bearer token with `read`.
    assert requests.get(f"{server.http_url}/api/visdom/envs", timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {TOKENS['read']}"}
    envs = requests.get(f"{server.http_url}/api/visdom/envs", headers=headers, timeout=10).json()["envs"]
    assert "auth" in [e["env"] for e in envs]


def test_token_file_is_not_readable_through_visdom(server: LocalServer, tmp_path: Path) -> None:
    reply = requests.post(
        f"http://127.0.0.1:{server.visdom_port}/", json={"username": "x", "password": "00"}, timeout=10
    )
    assert reply.status_code == 400 and "user_password" not in reply.cookies


def test_the_grpc_drop_in_writes_with_a_write_visdom_token_only(server: LocalServer) -> None:
    from runstream._errors import AuthError
    from runstream.visdom import Visdom as DropIn

    vis = DropIn(runstream_server=server.address, env="auth_grpc", password=TOKENS["write:visdom"])
    vis.text("by token", win="note")
    assert "by token" in json.loads(vis.get_window_data("note", "auth_grpc"))["content"]
    vis.close_client()
    with pytest.raises(AuthError, match="write:visdom"):
        DropIn(runstream_server=server.address, env="auth_grpc", password=TOKENS["write:other"])
