"""The unchanged visdom 0.2.4 client against a real `runstream serve` (its Visdom port and /visdom).

One server for the module (the client is slow to start: it waits for its websocket), each test in its
own env. After the calls, a SIGKILL and a restart: every window answers get_window_data as before.
"""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websocket

from runstream_service.launcher import LocalServer

visdom = pytest.importorskip("visdom")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    root = tmp_path_factory.mktemp("visdom")
    process = LocalServer(root / "data", log_path=root / "server.log", visdom=True).start()
    yield process
    process.close()


def client(server: LocalServer, env: str, **kwargs: Any) -> Any:
    return visdom.Visdom(port=server.visdom_port, env=env, raise_exceptions=True, **kwargs)


def new_env() -> str:
    return f"test_{uuid.uuid4().hex[:8]}"


def window(vis: Any, win: str, env: str | None = None) -> dict[str, Any]:
    return dict(json.loads(vis.get_window_data(win, env=env)))


def xy(pane: dict[str, Any], trace: int = 0) -> tuple[list[float], list[float]]:
    data = pane["content"]["data"][trace]
    return data["x"], data["y"]


def api(server: LocalServer, path: str) -> Any:
    with urllib.request.urlopen(server.http_url + path, timeout=10) as reply:
        return json.load(reply)


def test_check_connection_and_the_socket_handshake(server: LocalServer) -> None:
    vis = client(server, new_env())
    assert vis.check_connection(timeout_seconds=5)
    assert vis.socket_alive


def test_line_append_replace_remove_by_name(server: LocalServer) -> None:
    vis = client(server, new_env())
    win = vis.line(Y=np.array([1.0, 2.0]), X=np.array([0.0, 1.0]), opts={"title": "loss"})
    assert vis.win_exists(win) is True and vis.win_exists("nope") is False
    for step in range(2, 6):
        assert vis.line(Y=np.array([float(step)]), X=np.array([float(step)]), win=win, update="append") == win
    assert xy(window(vis, win)) == ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    vis.line(Y=np.array([7.0, 8.0]), X=np.array([0.0, 1.0]), win=win, update="append", name="val")
    vis.line(Y=np.array([9.0]), X=np.array([2.0]), win=win, update="append", name="val")
    pane = window(vis, win)
    assert [t["name"] for t in pane["content"]["data"]] == ["1", "val"]
    assert xy(pane, 1) == ([0.0, 1.0, 2.0], [7.0, 8.0, 9.0])
    vis.line(Y=np.array([5.0]), X=np.array([10.0]), win=win, update="replace", name="val")
    assert xy(window(vis, win), 1) == ([10.0], [5.0])
    vis.line(Y=None, X=None, win=win, update="remove", name="val")
    assert [t["name"] for t in window(vis, win)["content"]["data"]] == ["1"]
    masked = vis.line(Y=np.array([1.0]), X=np.array([np.nan]), win=win, update="append")
    assert masked == win and len(xy(window(vis, win))[0]) == 6  # an all-NaN x is skipped, as in Visdom
    # An append to a window that does not exist makes it, as in Visdom.
    made = vis.line(Y=np.array([1.0]), X=np.array([1.0]), win="made_by_append", update="append")
    assert made == "made_by_append" and vis.win_exists("made_by_append")


def test_scatter_with_labels_and_colours_appends(server: LocalServer) -> None:
    vis = client(server, new_env())
    points = np.random.default_rng(0).random((10, 2))
    win = vis.scatter(X=points, Y=np.array([1, 2] * 5), opts={"legend": ["a", "b"], "markersize": 5})
    vis.scatter(X=np.array([[0.5, 0.5]]), Y=np.array([1]), win=win, update="append", name="a")
    pane = window(vis, win)
    assert [t["name"] for t in pane["content"]["data"]] == ["a", "b"]
    assert len(pane["content"]["data"][0]["x"]) == 6


def test_heatmap_row_and_column_appends(server: LocalServer) -> None:
    vis = client(server, new_env())
    win = vis.heatmap(X=np.arange(6, dtype=float).reshape(2, 3))
    vis.heatmap(X=np.ones((1, 3)), win=win, update="appendRow")
    vis.heatmap(X=np.zeros((3, 1)), win=win, update="appendColumn")
    vis.heatmap(X=np.full((1, 4), 2.0), win=win, update="prependRow")
    z = window(vis, win)["content"]["data"][0]["z"]
    assert z == [[2.0] * 4, [0.0, 1.0, 2.0, 0.0], [3.0, 4.0, 5.0, 0.0], [1.0, 1.0, 1.0, 0.0]]


def test_text_append(server: LocalServer) -> None:
    vis = client(server, new_env())
    win = vis.text("Hello")
    vis.text("world", win=win, append=True)
    assert window(vis, win)["content"] == "Hello<br>world"


def test_every_plot_method_then_kill_and_restart(server: LocalServer) -> None:
    env = new_env()
    vis = client(server, env)
    rng = np.random.default_rng(1)
    wins = [
        vis.line(Y=np.column_stack([np.arange(10.0), np.arange(10.0) ** 2]), X=np.arange(10.0)),
        vis.scatter(X=rng.random((20, 3))),
        vis.stem(X=np.linspace(0, 1, 10), Y=np.sin(np.linspace(0, 1, 10))),
        vis.heatmap(X=rng.random((4, 5)), opts={"columnnames": list("abcde"), "rownames": list("wxyz")}),
        vis.bar(X=rng.random((3, 2)), opts={"stacked": True, "legend": ["p", "q"]}),
        vis.histogram(X=rng.random(100), opts={"numbins": 10}),
        vis.boxplot(X=rng.random((50, 2))),
        vis.surf(X=rng.random((5, 5))),
        vis.contour(X=rng.random((5, 5))),
        vis.quiver(X=rng.random((3, 3)), Y=rng.random((3, 3))),
        vis.image(rng.random((3, 16, 16)), opts={"caption": "noise", "store_history": True}),
        vis.images(rng.random((4, 3, 8, 8)), nrow=2),
        vis.text("<b>bold</b>"),
        vis.mesh(X=rng.random((8, 3)), opts={"opacity": 0.5}),
        vis.pie(X=np.array([1.0, 2.0, 3.0]), opts={"legend": ["a", "b", "c"]}),
        vis.sunburst(labels=["r", "a", "b"], parents=["", "r", "r"], values=np.array([3.0, 1.0, 2.0])),
        vis.svg(svgstr='<svg width="10" height="10"><circle cx="5" cy="5" r="4"/></svg>'),
        vis.properties([{"type": "text", "name": "lr", "value": "0.1"}]),
        vis.dual_axis_lines(X=np.arange(5.0), Y1=np.arange(5.0), Y2=np.arange(5.0) ** 2),
        vis.audio(tensor=rng.uniform(-1, 1, 4410).astype(np.float32), opts={"sample_frequency": 44100}),
    ]
    vis.image(rng.random((3, 16, 16)), win=wins[10], opts={"caption": "more", "store_history": True})
    if importlib.util.find_spec("av") is not None:
        wins.append(vis.video(tensor=rng.integers(0, 255, (4, 16, 16, 3)).astype(np.uint8)))
    if importlib.util.find_spec("networkx") is not None:
        wins.append(vis.graph([(0, 1), (1, 2)]))
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.plot([1, 2, 3])
        wins.append(vis.matplot(plt))
    if importlib.util.find_spec("plotly") is not None:
        import plotly.graph_objects as go

        wins.append(vis.plotlyplot(go.Figure(data=[go.Scatter(x=[1, 2], y=[3, 4])])))
    assert all(isinstance(w, str) and w.startswith("window_") for w in wins), wins
    assert all(vis.win_exists(w) for w in wins)
    history = window(vis, wins[10])
    assert history["type"] == "image_history" and len(history["content"]) == 2
    surf = window(vis, wins[7])["content"]["data"][0]
    assert surf["type"] == "surface"
    before = vis.get_window_data(env=env)
    assert set(json.loads(before)) == set(wins)

    # The UI's reads: every window, with a type and content.
    shown = api(server, f"/api/visdom/envs/{env}?width=400")
    assert [w["win"] for w in shown["windows"]] == wins
    types = {w["win"]: w["type"] for w in shown["windows"]}
    assert types[wins[0]] == "plot" and types[wins[10]] == "image" and types[wins[16]] == "svg"
    assert types[wins[19]] == "audio" and types[wins[12]] == "text"

    server.kill()
    server.start()
    after = client(server, env)
    assert after.get_window_data(env=env) == before
    assert env in after.get_env_list()


def test_window_and_env_calls(server: LocalServer) -> None:
    env = new_env()
    vis = client(server, env)
    win = vis.line(Y=np.arange(3.0), X=np.arange(3.0), opts={"title": "first"})
    vis.update_window_opts(win, {"title": "second", "xlabel": "step"})
    pane = window(vis, win)
    assert pane["title"] == "second" and pane["content"]["layout"]["title"] == "second"
    data = vis.get_window_data(win)
    vis.close(win)
    assert vis.win_exists(win) is False
    vis.set_window_data(data, win=win)
    assert xy(window(vis, win)) == ([0.0, 1.0, 2.0], [0.0, 1.0, 2.0])
    vis.line(Y=np.array([3.0]), X=np.array([3.0]), win=win, update="append")  # restored points append
    assert xy(window(vis, win))[0] == [0.0, 1.0, 2.0, 3.0]
    fork = f"{env}_fork"
    assert vis.fork_env(env, fork) == fork
    assert xy(window(vis, win, env=fork))[0] == [0.0, 1.0, 2.0, 3.0]
    assert json.loads(vis.save([env, "no_such_env"])) == [env]
    assert vis.win_hash(win) is not None and vis.win_hash("nope") is None
    vis.close(None)
    assert vis.win_exists(win) is False
    vis.delete_env(fork)
    assert fork not in vis.get_env_list() and env in vis.get_env_list()


def test_base_url_on_the_http_port(server: LocalServer) -> None:
    env = new_env()
    vis = visdom.Visdom(port=server.http_port, base_url="/visdom", env=env, raise_exceptions=True)
    assert vis.check_connection(timeout_seconds=5)
    win = vis.line(Y=np.array([1.0, 2.0]), X=np.array([0.0, 1.0]))
    assert vis.win_exists(win) is True


def test_replay_log(server: LocalServer) -> None:
    env = new_env()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "visdom.log"
        offline = visdom.Visdom(env=env, offline=True, log_to_filename=str(log))
        offline.line(Y=np.arange(4.0), X=np.arange(4.0), win="replayed")
        offline.line(Y=np.array([9.0]), X=np.array([4.0]), win="replayed", update="append")
        vis = client(server, env)
        vis.replay_log(str(log))
    assert xy(window(vis, "replayed")) == ([0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.0, 9.0])


def test_events_from_the_page_reach_register_event_handler(server: LocalServer) -> None:
    env = new_env()
    vis = client(server, env)
    win = vis.properties([{"type": "number", "name": "lr", "value": "1"}])
    got: list[dict[str, Any]] = []
    arrived = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        got.append(event)
        arrived.set()

    vis.register_event_handler(on_event, win)
    page = websocket.create_connection(f"ws://127.0.0.1:{server.visdom_port}/socket", timeout=10)
    try:
        assert json.loads(page.recv())["command"] == "register"
        event = {"event_type": "PropertyUpdate", "target": win, "eid": env, "propertyId": 0, "value": "2"}
        page.send(json.dumps({"cmd": "forward_to_vis", "data": event}))
        assert arrived.wait(10)
    finally:
        page.close()
    assert got[0]["value"] == "2"


def test_long_line_is_downsampled_for_the_ui_and_keeps_its_spike(server: LocalServer) -> None:
    env = new_env()
    vis = client(server, env)
    y = np.zeros(100_000)
    y[54_321] = 1e6
    win = vis.line(Y=y, X=np.arange(100_000.0))
    vis.line(Y=np.array([5.0]), X=np.array([100_000.0]), win=win, update="append")
    shown = api(server, f"/api/visdom/envs/{env}/windows/{win}?width=500")
    trace = shown["content"]["data"][0]
    assert trace["downsampled"] is True and trace["points"] == 100_001
    assert len(trace["x"]) <= 4 * 500 and max(trace["y"]) == 1e6 and trace["x"][-1] == 100_000.0
    envs = {e["env"]: e for e in api(server, "/api/visdom/envs")["envs"]}
    assert envs[env]["windows"] == 1


def test_nan_in_surf_is_kept(server: LocalServer) -> None:
    vis = client(server, new_env())
    z = np.ones((3, 3))
    z[1, 1] = np.nan
    win = vis.surf(X=z)
    stored = window(vis, win)["content"]["data"][0]["z"]
    assert math.isnan(stored[1][1]) and stored[0][0] == 1.0


def test_the_polling_back_channel(server: LocalServer) -> None:
    env = new_env()
    vis = visdom.Visdom(
        port=server.visdom_port, env=env, raise_exceptions=True, use_incoming_socket=False, use_polling=True
    )
    try:
        assert vis.check_connection(timeout_seconds=5)
        win = vis.text("polled")
        got = threading.Event()
        vis.register_event_handler(lambda event: got.set(), win)
        page = websocket.create_connection(f"ws://127.0.0.1:{server.visdom_port}/socket", timeout=10)
        try:
            page.send(json.dumps({"cmd": "forward_to_vis", "data": {"event_type": "Click", "target": win, "eid": env}}))
            assert got.wait(10)
        finally:
            page.close()
    finally:
        vis.use_socket = False  # ends the client's polling thread


def test_a_taken_visdom_port_warns_and_the_server_goes_on(tmp_path: Path) -> None:
    process = LocalServer(tmp_path / "data", log_path=tmp_path / "server.log", visdom=True)
    assert process.visdom_port is not None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", process.visdom_port))
        taken.listen()
        with process:
            assert "not serving Visdom" in process.log()
            vis = visdom.Visdom(port=process.http_port, base_url="/visdom", raise_exceptions=True)
            assert vis.win_exists(vis.text("still here")) is True


def test_visdom_on_a_public_address_needs_tokens(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "runstream_service", "serve", "--data", str(tmp_path), "--visdom", "0.0.0.0:8097"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "refusing to listen on 0.0.0.0:8097 without tokens" in done.stderr
