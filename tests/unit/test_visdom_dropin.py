"""runstream.visdom.Visdom queues calls and builds what the unchanged visdom client would POST.

A fake run stands in for runstream's Run (the seam the client writes through); the reference is the
visdom package's own client with send=False, which returns (message, endpoint) instead of posting.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

pytest.importorskip("visdom")
import visdom

from runstream._encode import encode_visdom_calls
from runstream.visdom import Visdom


class FakeRun:
    """Records what the client queues and answers reads as a server holding `windows` would."""

    def __init__(self) -> None:
        self.queued: list[Any] = []
        self.flushes = 0
        self.reads: list[tuple[str, dict[str, Any]]] = []
        self.windows: set[str] = set()

    def _log_visdom(self, call: Any, size: int) -> None:
        assert size > 0
        self.queued.append(call)

    def flush(self, timeout: float = 60.0) -> bool:
        self.flushes += 1
        return True

    def _visdom_read(self, endpoint: str, body: bytes) -> bytes:
        msg = json.loads(body)
        self.reads.append((endpoint, msg))
        if endpoint == "win_exists":
            return b"true" if msg["win"] in self.windows else b"false"
        if endpoint == "env_state":
            return b'["main"]'
        return b"{}"

    def sent(self) -> list[tuple[str, Any]]:
        return [(c.endpoint, json.loads(c.body)) for c in encode_visdom_calls(self.queued)]


def _reference(method: str, *args: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """What visdom's own client would POST for this call (send=False hands back the message)."""
    client = visdom.Visdom(send=False, use_incoming_socket=False)
    msg, endpoint = getattr(client, method)(*args, **kwargs)
    return endpoint, json.loads(json.dumps(msg))


def _client() -> tuple[Visdom, FakeRun]:
    run = FakeRun()
    vis = Visdom(run=run)  # type: ignore[arg-type]
    run.queued.clear()  # the env announcement
    return vis, run


def test_the_client_announces_its_env_first() -> None:
    run = FakeRun()
    Visdom(env="exp_1", run=run)  # type: ignore[arg-type]
    assert run.sent() == [("env/exp_1", {"eid": "exp_1"})]


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("line", (np.array([1.0, 2.0, 3.0]),), {"X": np.array([0, 1, 2]), "opts": {"title": "loss"}}),
        ("scatter", (np.random.default_rng(0).random((5, 2)),), {"Y": np.array([1, 2, 1, 2, 1])}),
        ("bar", (np.array([3.0, 1.0, 2.0]),), {}),
        ("heatmap", (np.arange(6.0).reshape(2, 3),), {"opts": {"colormap": "Viridis"}}),
        ("histogram", (np.arange(100.0),), {"opts": {"numbins": 10}}),
        ("boxplot", (np.arange(20.0).reshape(10, 2),), {}),
        ("surf", (np.arange(9.0).reshape(3, 3),), {}),
        ("contour", (np.arange(9.0).reshape(3, 3),), {}),
        ("stem", (np.arange(5.0),), {}),
        ("pie", (np.array([1.0, 2.0, 3.0]),), {}),
        ("text", ("<b>hello</b>",), {}),
        ("image", (np.zeros((3, 4, 5), np.uint8),), {"opts": {"caption": "zeros"}}),
        ("mesh", (np.random.default_rng(1).random((4, 3)),), {"opts": {"opacity": 0.5}}),
        ("quiver", (np.ones((2, 2)), np.ones((2, 2))), {}),
    ],
)
def test_a_call_builds_what_the_visdom_client_would_post(method: str, args: tuple[Any, ...], kwargs: Any) -> None:
    vis, run = _client()
    win = getattr(vis, method)(*args, win="w1", **kwargs)
    assert win == "w1"
    assert run.sent() == [_reference(method, *args, win="w1", **kwargs)]


def test_an_append_is_an_update_and_copies_its_arrays_at_the_call() -> None:
    vis, run = _client()
    run.windows.add("loss")  # made earlier, e.g. by another process
    y = np.array([1.0])
    vis.line(Y=y, X=np.array([5]), win="loss", update="append")
    y[0] = 99.0  # the caller reuses its array at once
    [(endpoint, body)] = run.sent()
    assert endpoint == "update"
    assert body["append"] is True and body["win"] == "loss"
    assert body["data"][0]["y"] == [1.0] and body["data"][0]["x"] == [5]


def test_an_append_to_a_missing_window_makes_it_as_the_visdom_client_does() -> None:
    vis, run = _client()
    for step in range(3):
        vis.line(Y=np.array([float(step)]), X=np.array([step]), win="new", update="append")
    assert [endpoint for endpoint, _ in run.sent()] == ["events", "update", "update"]
    assert run.reads == [("win_exists", {"win": "new", "eid": "main"})]  # asked once, on the sender thread


def test_a_window_without_an_id_gets_one_at_the_call() -> None:
    vis, run = _client()
    win = vis.text("hi")
    assert win.startswith("window_")
    [(_, body)] = run.sent()
    assert body["win"] == win


def test_a_call_visdom_rejects_is_warned_about_and_left_out() -> None:
    vis, run = _client()
    vis.line(Y=np.ones((2, 2, 2)), win="bad")  # visdom asserts Y is 1-D or 2-D
    vis.text("after", win="t")
    with pytest.warns(RuntimeWarning, match="Visdom.line failed and was not sent"):
        sent = run.sent()
    assert [body["win"] for _, body in sent] == ["t"]
    assert vis.failed_calls == 1


def test_reads_flush_first_then_ask_the_server() -> None:
    vis, run = _client()
    run.windows.add("here")
    assert vis.win_exists("here") is True
    assert vis.win_exists("gone") is False
    assert vis.get_env_list() == ["main"]
    assert run.flushes == 3
    assert [endpoint for endpoint, _ in run.reads] == ["win_exists", "win_exists", "env_state"]


def test_images_with_history_append_once_the_window_exists() -> None:
    vis, run = _client()
    image = np.zeros((3, 4, 4), np.uint8)
    vis.image(image, win="hist", opts={"store_history": True})
    vis.image(image, win="hist", opts={"store_history": True})
    assert [endpoint for endpoint, _ in run.sent()] == ["events", "update"]


def test_env_calls_queue_their_messages_in_order() -> None:
    vis, run = _client()
    vis.fork_env("main", "copy")
    vis.close(win="w", env="copy")
    vis.delete_env("copy")
    assert run.sent() == [
        ("fork_env", {"prev_eid": "main", "eid": "copy"}),
        ("close", {"win": "w", "eid": "copy"}),
        ("delete_env", {"eid": "copy"}),
    ]


def test_page_events_need_the_http_client() -> None:
    vis, _ = _client()
    with pytest.raises(NotImplementedError, match="back channel"):
        vis.register_event_handler(lambda event: None, "w")
