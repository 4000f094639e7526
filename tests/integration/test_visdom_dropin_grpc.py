"""runstream.visdom.Visdom against a real server: its calls travel in gRPC batches and are stored as
the unchanged visdom client's calls are, survive the server's absence, and are never applied twice."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runstream_service.launcher import LocalServer

visdom = pytest.importorskip("visdom")

from runstream.visdom import Visdom  # noqa: E402


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    process = LocalServer(tmp_path / "data", log_path=tmp_path / "server.log", visdom=True).start()
    yield process
    process.close()


def new_env() -> str:
    return f"dropin_{uuid.uuid4().hex[:8]}"


def comparable(pane: dict[str, Any]) -> dict[str, Any]:
    """A window's document without what differs from one making to the next (ids, content hash)."""
    pane = json.loads(json.dumps(pane))
    for key in ("contentID", "id", "i"):
        pane.pop(key, None)
    return pane


def seed_calls(vis: Any) -> None:
    """The seed's kinds of calls, with fixed window names."""
    rng = np.random.default_rng(0)
    vis.line(Y=np.array([1.0, 2.0, 4.0]), X=np.array([0, 1, 2]), win="line", opts={"title": "loss"})
    vis.line(Y=np.array([5.0]), X=np.array([3]), win="line", update="append")
    vis.scatter(X=rng.random((10, 2)), Y=rng.integers(1, 3, 10), win="scatter")
    vis.heatmap(X=np.arange(12.0).reshape(3, 4), win="heatmap")
    vis.bar(X=np.array([3.0, 1.0, 2.0]), win="bar")
    vis.histogram(X=rng.standard_normal(200), win="histogram", opts={"numbins": 12})
    vis.boxplot(X=rng.standard_normal((50, 2)), win="boxplot")
    vis.surf(X=np.outer(np.arange(5.0), np.arange(5.0)), win="surf")
    vis.contour(X=np.outer(np.arange(5.0), np.arange(5.0)), win="contour")
    vis.quiver(X=np.ones((3, 3)), Y=np.ones((3, 3)), win="quiver")
    vis.stem(X=np.arange(6.0), win="stem")
    vis.image(np.full((3, 8, 8), 128, np.uint8), win="image", opts={"caption": "grey"})
    vis.text("<b>hello</b>", win="text")
    vis.text(" world", win="text", append=True)
    vis.mesh(X=rng.random((6, 3)), win="mesh", opts={"opacity": 0.5})
    vis.pie(X=np.array([1.0, 2.0, 3.0]), win="pie")


def test_the_drop_in_stores_what_the_unchanged_client_stores(server: LocalServer) -> None:
    http_env, grpc_env = new_env(), new_env()
    reference = visdom.Visdom(port=server.visdom_port, env=http_env, raise_exceptions=True, use_incoming_socket=False)
    seed_calls(reference)
    dropin = Visdom(runstream_server=server.address, env=grpc_env)
    seed_calls(dropin)
    expected = json.loads(reference.get_window_data(env=http_env))
    stored = json.loads(dropin.get_window_data(env=grpc_env))  # flushes first
    assert sorted(stored) == sorted(expected)
    for win in expected:
        assert comparable(stored[win]) == comparable(expected[win]), win
    assert grpc_env in dropin.get_env_list()
    assert dropin.win_exists("line", env=grpc_env) is True and dropin.win_exists("nope", env=grpc_env) is False
    # the HTTP side (the Visdom port and the web UI) sees the drop-in's windows at once
    assert reference.win_exists("line", env=grpc_env) is True
    dropin.close_client()


def test_appends_arrive_in_order_exactly_once(server: LocalServer) -> None:
    env = new_env()
    vis = Visdom(runstream_server=server.address, env=env)
    for step in range(2000):
        vis.line(Y=np.array([float(step % 7)]), X=np.array([step]), win="loss", update="append")
    pane = json.loads(vis.get_window_data("loss", env))
    trace = pane["content"]["data"][0]
    assert trace["x"] == list(range(2000))
    assert trace["y"] == [float(step % 7) for step in range(2000)]
    vis.close_client()


def test_calls_made_while_the_server_is_away_arrive_when_it_is_back(server: LocalServer, tmp_path: Path) -> None:
    env = new_env()
    vis = Visdom(runstream_server=server.address, env=env)
    vis.line(Y=np.array([0.0]), X=np.array([0]), win="loss")
    assert vis.win_exists("loss", env) is True
    server.stop(signal.SIGKILL)
    for step in range(1, 300):
        vis.line(Y=np.array([float(step)]), X=np.array([step]), win="loss", update="append")
    vis.text("made while away", win="note")
    server.start()
    pane = json.loads(vis.get_window_data("loss", env))
    assert pane["content"]["data"][0]["x"] == list(range(300))
    assert "made while away" in json.loads(vis.get_window_data("note", env))["content"]
    vis.close_client()


def test_env_calls_fork_close_and_delete(server: LocalServer) -> None:
    env, copy = new_env(), new_env()
    vis = Visdom(runstream_server=server.address, env=env)
    vis.text("a", win="a")
    vis.text("b", win="b")
    vis.fork_env(env, copy)
    vis.close(win="a", env=copy)
    assert sorted(json.loads(vis.get_window_data(env=copy))) == ["b"]
    assert sorted(json.loads(vis.get_window_data(env=env))) == ["a", "b"]
    vis.delete_env(copy)
    assert copy not in vis.get_env_list()
    assert json.loads(vis.save([env, copy])) == [env]
    vis.close_client()


def test_a_call_that_finds_nothing_to_change_does_not_take_its_batch_with_it(server: LocalServer) -> None:
    env = new_env()
    vis = Visdom(runstream_server=server.address, env=env)
    vis.update_window_opts("missing", {"title": "x"})  # no such window: skipped by the server
    vis.text("kept", win="kept")
    assert "kept" in json.loads(vis.get_window_data("kept", env))["content"]
    assert "skipped" in server.log()
    vis.close_client()
