"""`from runstream.visdom import Visdom`: the visdom client's methods, over runstream's gRPC stream.

    from runstream.visdom import Visdom   # was: from visdom import Visdom
    vis = Visdom(env="main")
    vis.line(Y=np.array([loss]), X=np.array([step]), win="loss", update="append")

For training loops that cannot afford an HTTP round trip per call. A drawing call returns at once
(the window id, as the visdom client returns it): it copies its array arguments and queues the call.
The sender thread of a runstream run then builds the message that the visdom client would POST, with
the installed visdom package's own code (so what is stored is what the unchanged client stores), and
sends it in the run's batches: spooled while the server is away, replayed, never applied twice. The
server applies each call in the batch's commit as its Visdom HTTP endpoint would.

Reads (`win_exists`, `get_window_data`, `get_env_list`, `win_hash`, `save`) first wait until every
call made before them is stored, then ask the server (the VisdomRead RPC).

What differs from the HTTP client, because a call no longer waits for the server:
- a call whose arguments the visdom code rejects (a wrong shape, say) fails on the sender thread: it
  is reported with a warning and counted in `failed_calls`, not raised at the call;
- `register_event_handler` needs Visdom's websocket back channel, which this client has not: it
  raises; use visdom's own client for page events;
- `matplot`, `plotlyplot`, `svg(svgfile=...)`, `audio` and `video` build their message at the call
  (their figure or file may change right after it), so they cost what the visdom client's do.

The calls travel under a run of project `visdom` (named "visdom client HOST:PID"), which is finished
when the client is closed or the process exits.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from runstream._errors import RunstreamError
from runstream._run import Run, init

__all__ = ["Visdom"]

PROJECT = "visdom"
DEFAULT_GRPC_PORT = 50051
_EAGER = frozenset({"matplot", "plotlyplot", "svg", "audio", "video", "replay_log"})


def _import_visdom() -> Any:
    try:
        import visdom
    except ImportError:
        raise ImportError(
            "runstream.visdom builds Visdom's messages with the visdom client's own code: "
            "pip install 'setuptools<70' wheel && pip install --no-build-isolation visdom==0.2.4"
        ) from None
    return visdom


def _own(value: Any) -> Any:
    """A private copy of an argument the caller may change after the call returns."""
    kind = type(value)
    if kind is np.ndarray:
        return value.copy()
    if value is None or kind in (int, float, str, bool):
        return value
    if kind is list:
        return list(value)
    if kind is dict:
        return dict(value)
    module = kind.__module__
    if module.startswith("torch"):
        return value.detach().cpu().numpy().copy()
    return value


def new_window_id() -> str:
    return "window_" + secrets.token_hex(7)


@dataclass(frozen=True)
class PendingCall:
    """A drawing call, queued at once; its messages are built later, on the sender thread."""

    client: Visdom
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def messages(self) -> list[tuple[str, bytes]]:
        return self.client._build(self.method, self.args, self.kwargs)

    def failed(self, error: Exception) -> None:
        self.client.failed_calls += 1
        warnings.warn(
            f"runstream.visdom: Visdom.{self.method} failed and was not sent: {error!r}", RuntimeWarning, stacklevel=1
        )


@dataclass(frozen=True)
class BuiltCall:
    """A call whose messages were built at the call (figures and files that may change, env calls)."""

    built: list[tuple[str, bytes]]

    def messages(self) -> list[tuple[str, bytes]]:
        return self.built

    def failed(self, error: Exception) -> None:  # pragma: no cover - nothing is left to build
        pass


def _grpc_address(server: str, runstream_server: str | None) -> str | None:
    """RUNSTREAM_SERVER's rules, unless the visdom `server` names another host (then its gRPC port)."""
    if runstream_server:
        return runstream_server
    host = urlparse(server if "://" in server else f"http://{server}").hostname or "localhost"
    if host == "localhost" or os.environ.get("RUNSTREAM_SERVER"):
        return None  # runstream.init's own default (RUNSTREAM_SERVER, else 127.0.0.1:50051)
    return f"{host}:{DEFAULT_GRPC_PORT}"


class Visdom:
    """visdom.Visdom's methods and arguments; writes go through a runstream run's gRPC stream.

    The constructor takes visdom's arguments. `server` names the host (its gRPC port is 50051 unless
    RUNSTREAM_SERVER or `runstream_server=` say otherwise); `password` is a runstream token with
    `write:visdom`; `port`, `base_url`, `endpoint`, proxies and the socket options concern Visdom's
    HTTP client and are accepted and not used. `send=False` and `offline=True` keep calls local as
    the visdom client does (offline writes `log_to_filename`).
    """

    def __init__(
        self,
        server: str = "http://localhost",
        endpoint: str = "events",
        port: int = 8097,
        base_url: str = "/",
        ipv6: bool = True,
        http_proxy_host: str | None = None,
        http_proxy_port: int | None = None,
        env: str = "main",
        send: bool = True,
        raise_exceptions: bool | None = None,
        use_incoming_socket: bool = True,
        log_to_filename: str | None = None,
        username: str | None = None,
        password: str | None = None,
        proxies: dict[str, str] | None = None,
        offline: bool = False,
        use_polling: bool = False,
        *,
        runstream_server: str | None = None,
        run: Run | None = None,
    ) -> None:
        visdom = _import_visdom()
        self.env = env
        self.send = send
        self.offline = offline
        self.raise_exceptions = raise_exceptions
        self.log_to_filename = log_to_filename
        self.failed_calls = 0
        # (env, win) of the windows this client's calls made, as built (the sender thread's win_exists)
        self._known: set[tuple[str, str]] = set()
        self._local = threading.local()
        self._builder = _builder_class(visdom)(self, env=env, log_to_filename=log_to_filename)
        self._run: Run | None = None
        if not send or offline:
            return
        if run is None:
            run = init(
                project=PROJECT,
                name=f"visdom client {socket.gethostname()}:{os.getpid()}",
                server=_grpc_address(server, runstream_server),
                token=password,
            )
        self._run = run
        self._queue(BuiltCall([("env/" + env, json.dumps({"eid": env}).encode())]))

    # -- plumbing --------------------------------------------------------------------------------

    def _queue(self, call: PendingCall | BuiltCall, size: int = 256) -> None:
        if self._run is not None:
            self._run._log_visdom(call, size)

    def _later(self, method: str, win: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Queue a drawing call; its window id, made here when the caller gave none."""
        if win is None:
            win = new_window_id()
        kwargs["win"] = win
        if method in _EAGER or not self.send or self.offline:
            built = self._build(method, args, kwargs)
            if self.send and not self.offline:
                self._queue(BuiltCall(built), 256 + sum(len(body) for _, body in built))
            return win
        size = 256 + sum(a.nbytes for a in args if type(a) is np.ndarray)
        self._queue(PendingCall(self, method, args, kwargs), size)
        return win

    def _build(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, bytes]]:
        """Run visdom's own method with sending replaced by collecting (on the calling thread)."""
        collected: list[tuple[str, bytes]] = []
        self._local.collected = collected
        try:
            getattr(self._builder, method)(*args, **kwargs)
        finally:
            self._local.collected = None
        if kwargs.get("win") is not None:  # it exists once this call is applied
            self._known.add((kwargs.get("env") or self.env, kwargs["win"]))
        return collected

    def _collect(self, endpoint: str, msg: dict[str, Any]) -> Any:
        collected = getattr(self._local, "collected", None)
        if collected is None:
            raise RuntimeError(f"runstream.visdom: unexpected send to {endpoint!r} outside a call")
        collected.append((endpoint, json.dumps(msg).encode()))
        return msg.get("win", True)

    def _window_known(self, win: str, env: str | None) -> bool | None:
        """The builder's win_exists: True for a window this client made, else the server's answer."""
        key = (env or self.env, win)
        if key in self._known:
            return True
        if self._run is None:
            return None
        try:
            answer = self._read("win_exists", {"win": win, "eid": key[0]}, flush=False)
        except Exception:  # the server is away: visdom's client answers None then, too
            return None
        return {"true": True, "false": False}.get(answer)

    def _read(self, endpoint: str, body: dict[str, Any], flush: bool = True) -> str:
        if self._run is None:
            raise RuntimeError("this Visdom client does not send (send=False or offline=True): it cannot read")
        if flush and not self._run.flush():
            raise TimeoutError(
                f"runstream.visdom: the calls made before this {endpoint} were not all stored within 60 s "
                "(the server is away or slow); they stay queued and spooled"
            )
        if body.get("eid") is None:
            body["eid"] = self.env
        return self._run._visdom_read(endpoint, json.dumps(body).encode()).decode()

    def close_client(self, timeout: float = 60.0) -> None:
        """Send what is queued and finish the carrier run (also done at exit)."""
        if self._run is not None:
            self._run.finish(timeout=timeout)

    # -- reads -------------------------------------------------------------------------------------

    def check_connection(self, timeout_seconds: float = 0) -> bool:
        try:
            return self.win_exists("") is not None
        except Exception:
            return False

    def win_exists(self, win: str, env: str | None = None) -> bool | None:
        """True or False; None when the server cannot tell now (as the visdom client answers)."""
        try:
            answer = self._read("win_exists", {"win": win, "eid": env})
        except (TimeoutError, RunstreamError):
            return None
        return {"true": True, "false": False}.get(answer)

    def win_hash(self, win: str, env: str | None = None) -> str | None:
        answer = self._read("win_hash", {"win": win, "eid": env})
        return None if answer == "false" else answer

    def get_window_data(self, win: str | None = None, env: str | None = None) -> str:
        return self._read("win_data", {"win": win, "eid": env})

    def get_env_list(self) -> list[str]:
        if self._run is None:
            return [self.env]
        found: list[str] = json.loads(self._read("env_state", {}))
        return found

    def save(self, envs: list[str]) -> str:
        return self._read("save", {"data": list(envs)})

    # -- envs and windows --------------------------------------------------------------------------

    def fork_env(self, prev_eid: str, eid: str) -> str:
        self._queue(BuiltCall([("fork_env", json.dumps({"prev_eid": prev_eid, "eid": eid}).encode())]))
        return eid

    def delete_env(self, env: str) -> str:
        self._queue(BuiltCall([("delete_env", json.dumps({"eid": env}).encode())]))
        return ""

    def close(self, win: str | None = None, env: str | None = None) -> str:
        body = {"win": win, "eid": env or self.env}
        self._queue(BuiltCall([("close", json.dumps(body).encode())]))
        return ""

    def set_window_data(self, data: Any, win: str | None = None, env: str | None = None) -> str:
        body = {"win": win, "eid": env or self.env, "data": data}
        self._queue(BuiltCall([("win_data", json.dumps(body).encode())]))
        return ""

    def update_window_opts(self, win: str, opts: dict[str, Any], env: str | None = None) -> Any:
        self._queue(PendingCall(self, "update_window_opts", (win, _own(opts)), {"env": env}))
        return win

    def replay_log(self, log_filename: str) -> None:
        with open(log_filename) as log:
            entries = [json.loads(line) for line in log if line.strip()]
        self._queue(BuiltCall([(endpoint, json.dumps(msg).encode()) for endpoint, msg in entries]))

    def register_event_handler(self, handler: Callable[[dict[str, Any]], None], target: str) -> None:
        raise NotImplementedError(
            "runstream.visdom.Visdom has no back channel from the page; for page events use visdom's own "
            "client (from visdom import Visdom) against runstream's Visdom port"
        )

    def clear_event_handlers(self, target: str) -> None:
        pass  # none can be registered

    # -- drawing: visdom's signatures; each returns the window id at once ----------------------------

    def line(
        self,
        Y: Any,
        X: Any = None,
        win: str | None = None,
        env: str | None = None,
        opts: dict[str, Any] | None = None,
        update: str | None = None,
        name: str | None = None,
    ) -> Any:
        kwargs = {"X": _own(X), "env": env, "opts": _own(opts), "update": update, "name": name}
        return self._later("line", win, (_own(Y),), kwargs)

    def scatter(
        self,
        X: Any,
        Y: Any = None,
        win: str | None = None,
        env: str | None = None,
        opts: dict[str, Any] | None = None,
        update: str | None = None,
        name: str | None = None,
    ) -> Any:
        kwargs = {"Y": _own(Y), "env": env, "opts": _own(opts), "update": update, "name": name}
        return self._later("scatter", win, (_own(X),), kwargs)

    def heatmap(
        self, X: Any, win: str | None = None, env: str | None = None, update: str | None = None, opts: Any = None
    ) -> Any:
        return self._later("heatmap", win, (_own(X),), {"env": env, "update": update, "opts": _own(opts)})

    def _plain(self, method: str, first: Any, win: str | None, env: str | None, opts: Any, **more: Any) -> Any:
        kwargs = {"env": env, "opts": _own(opts), **{k: _own(v) for k, v in more.items()}}
        return self._later(method, win, (_own(first),), kwargs)

    def bar(self, X: Any, Y: Any = None, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("bar", X, win, env, opts, Y=Y)

    def histogram(self, X: Any, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("histogram", X, win, env, opts)

    def boxplot(self, X: Any, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("boxplot", X, win, env, opts)

    def surf(self, X: Any, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("surf", X, win, env, opts)

    def contour(self, X: Any, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("contour", X, win, env, opts)

    def quiver(
        self,
        X: Any,
        Y: Any,
        gridX: Any = None,
        gridY: Any = None,
        win: str | None = None,
        env: str | None = None,
        opts: Any = None,
    ) -> Any:
        return self._plain("quiver", X, win, env, opts, Y=Y, gridX=gridX, gridY=gridY)

    def stem(self, X: Any, Y: Any = None, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("stem", X, win, env, opts, Y=Y)

    def pie(self, X: Any, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("pie", X, win, env, opts)

    def mesh(self, X: Any, Y: Any = None, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("mesh", X, win, env, opts, Y=Y)

    def sunburst(
        self,
        labels: Any,
        parents: Any,
        values: Any = None,
        win: str | None = None,
        env: str | None = None,
        opts: Any = None,
    ) -> Any:
        return self._plain("sunburst", labels, win, env, opts, parents=parents, values=values)

    def image(self, img: Any, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("image", img, win, env, opts)

    def images(
        self,
        tensor: Any,
        nrow: int = 8,
        padding: int = 2,
        win: str | None = None,
        env: str | None = None,
        opts: Any = None,
    ) -> Any:
        return self._plain("images", tensor, win, env, opts, nrow=nrow, padding=padding)

    def text(
        self, text: str, win: str | None = None, env: str | None = None, opts: Any = None, append: bool = False
    ) -> Any:
        return self._plain("text", text, win, env, opts, append=append)

    def properties(self, data: Any, win: str | None = None, env: str | None = None, opts: Any = None) -> Any:
        return self._plain("properties", data, win, env, opts)

    def dual_axis_lines(
        self,
        X: Any = None,
        Y1: Any = None,
        Y2: Any = None,
        opts: Any = None,
        win: str | None = None,
        env: str | None = None,
    ) -> Any:
        kwargs = {"X": _own(X), "Y1": _own(Y1), "Y2": _own(Y2), "opts": _own(opts), "env": env}
        return self._later("dual_axis_lines", win, (), kwargs)

    def graph(
        self,
        edges: Any,
        edgeLabels: Any = None,
        nodeLabels: Any = None,
        opts: Any = None,
        env: str | None = None,
        win: str | None = None,
    ) -> Any:
        kwargs = {"edgeLabels": _own(edgeLabels), "nodeLabels": _own(nodeLabels), "opts": _own(opts or {}), "env": env}
        return self._later("graph", win, (_own(edges),), kwargs)

    def embeddings(
        self,
        features: Any,
        labels: Any,
        data_getter: Any = None,
        data_type: Any = None,
        win: str | None = None,
        env: str | None = None,
        opts: Any = None,
    ) -> Any:
        kwargs = {"data_getter": data_getter, "data_type": data_type, "env": env, "opts": _own(opts)}
        return self._later("embeddings", win, (_own(features), _own(labels)), kwargs)

    # built at the call: a figure or a file may change right after it
    def svg(
        self,
        svgstr: str | None = None,
        svgfile: str | None = None,
        win: str | None = None,
        env: str | None = None,
        opts: Any = None,
    ) -> Any:
        return self._later("svg", win, (), {"svgstr": svgstr, "svgfile": svgfile, "env": env, "opts": opts})

    def matplot(self, plot: Any, opts: Any = None, env: str | None = None, win: str | None = None) -> Any:
        return self._later("matplot", win, (plot,), {"opts": opts, "env": env})

    def plotlyplot(self, figure: Any, win: str | None = None, env: str | None = None) -> Any:
        return self._later("plotlyplot", win, (figure,), {"env": env})

    def audio(
        self,
        tensor: Any = None,
        audiofile: str | None = None,
        win: str | None = None,
        env: str | None = None,
        opts: Any = None,
    ) -> Any:
        return self._later("audio", win, (), {"tensor": tensor, "audiofile": audiofile, "env": env, "opts": opts})

    def video(
        self,
        tensor: Any = None,
        dim: str = "LxHxWxC",
        videofile: str | None = None,
        win: str | None = None,
        env: str | None = None,
        opts: Any = None,
    ) -> Any:
        kwargs = {"tensor": tensor, "dim": dim, "videofile": videofile, "env": env, "opts": opts}
        return self._later("video", win, (), kwargs)


def _builder_class(visdom: Any) -> type:
    """visdom.Visdom with sending replaced by collecting the (endpoint, JSON body) it would POST."""

    class MessageBuilder(visdom.Visdom):  # type: ignore[misc]
        def __init__(self, owner: Visdom, env: str, log_to_filename: str | None) -> None:
            self._owner: Visdom | None = None
            # send=False: visdom's constructor then opens no connection and no socket
            super().__init__(env=env, send=False, use_incoming_socket=False, log_to_filename=log_to_filename)
            self._owner = owner

        def _send(
            self,
            msg: dict[str, Any],
            endpoint: str = "events",
            quiet: bool = False,
            from_log: bool = False,
            create: bool = True,
        ) -> Any:
            if msg.get("eid") is None:
                msg["eid"] = self.env
            if self._owner is None:  # visdom's constructor announcing the env: runstream's Visdom sends that
                return True
            if "win" in msg and msg["win"] is None and create:
                msg["win"] = new_window_id()
            if not from_log:
                self._log(msg, endpoint)
            return self._owner._collect(endpoint, msg)

        def win_exists(self, win: str, env: str | None = None) -> bool | None:
            assert self._owner is not None
            return self._owner._window_known(win, env)

    return MessageBuilder
