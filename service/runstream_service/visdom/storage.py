"""The Visdom side of the DuckDB file: envs, windows and their points (tables in store/schema.py).

Writes (`VisdomWrites`) run on the writer thread, each inside one transaction (store/base.py's
Transaction), so a reply leaves only after its change is committed. A window is one row of
visdom_panes (its document, panes.py); each line and scatter trace's points are rows of
visdom_trace_points, so an append is an INSERT of the new points; the document is written again only
when it changed (new opts, a new trace), and the window's updated_at at most once a second. The
writer thread keeps the small documents it has touched, and their traces' point counts, in memory
(cleared when a transaction fails), so an append reads nothing back.

Reads (the functions taking a cursor) run on the reader's cursors and see committed data only.
Envs belong to the project `visdom` (visdom_envs.project): a Visdom env is not a training run, with no
status, ranks or config, so it has its own table, which project-level operations select by project.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from runstream_service.errors import NotFound
from runstream_service.store.base import NEEDS_TRANSACTION, Transaction
from runstream_service.store.transactions import insert_rows
from runstream_service.visdom import panes
from runstream_service.visdom.panes import Change, Columns
from runstream_service.visdom.protocol import ForkEnv, SetWindowData, UpdatePost, WindowPost

PROJECT = "visdom"
TOUCH_SECONDS = 1.0  # visdom_panes.updated_at follows appends to within this
VALUES_MAX_ROWS = 64  # fewer points go in as one INSERT ... VALUES, which is faster than Arrow for few rows
CACHE_MAX_DOC_CHARS = 256 << 10  # documents larger than this (images, big heatmaps) are read back instead

POINT_SCHEMA = pa.schema(
    [
        ("pane_id", pa.int64()),
        ("trace", pa.int32()),
        ("seq", pa.int64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("z", pa.float64()),
        ("text", pa.string()),
        ("color", pa.string()),
    ]
)


@dataclass
class _Pane:
    """A window as the writer thread last wrote it: its document (and that document's JSON), opts,
    when its updated_at was last written, and how many points each columnar trace holds."""

    pane_id: int
    doc: dict[str, Any]
    text: str
    opts: dict[str, Any]
    touched: float
    counts: dict[int, int]


def _opts_json(opts: dict[str, Any]) -> str:
    return orjson.dumps(opts, default=str).decode()  # NaN as null: the view's opts column is JSON


class VisdomWrites:
    """Builds the Transactions of Visdom's writes; their work runs on the writer thread only."""

    def __init__(self) -> None:
        self._panes: dict[tuple[str, str], _Pane] = {}
        self._envs: set[str] | None = None
        self._next_pane_id: int | None = None
        # While a gRPC batch's calls run (visdom/batched.py): their new points, inserted once at its end.
        self._deferred: dict[str, list[Any]] | None = None

    def _transaction(
        self,
        work: Callable[[duckdb.DuckDBPyConnection], Any],
        single: Callable[[duckdb.DuckDBPyConnection], Any] | None = None,
    ) -> Transaction:
        return Transaction(work, on_rollback=self._forget, single=single)

    def _forget(self) -> None:
        self._deferred = None
        self._panes.clear()
        self._envs = None
        self._next_pane_id = None

    # -- the pieces, on the writer thread -------------------------------------------------------------

    def _ensure_env(self, con: duckdb.DuckDBPyConnection, env: str) -> None:
        if self._envs is None:
            self._envs = {e for (e,) in con.execute("SELECT env FROM visdom_envs").fetchall()}
        if env not in self._envs:
            con.execute("INSERT INTO visdom_envs VALUES (?, ?, ?)", [env, PROJECT, time.time()])
            self._envs.add(env)

    def _pane(self, con: duckdb.DuckDBPyConnection, env: str, win: str) -> _Pane | None:
        found = self._panes.get((env, win))
        if found is not None:
            return found
        self._flush_points(con)
        row = con.execute(
            "SELECT pane_id, doc, opts, updated_at FROM visdom_panes WHERE env = ? AND win = ?", [env, win]
        ).fetchone()
        if row is None:
            return None
        counts = con.execute(
            "SELECT trace, max(seq) + 1 FROM visdom_trace_points WHERE pane_id = ? GROUP BY trace", [row[0]]
        ).fetchall()
        pane = _Pane(
            int(row[0]),
            json.loads(row[1]),
            row[1],
            json.loads(row[2]),
            float(row[3]),
            {int(t): int(n) for t, n in counts},
        )
        if len(row[1]) <= CACHE_MAX_DOC_CHARS:
            self._panes[(env, win)] = pane
        return pane

    def _new_pane_id(self, con: duckdb.DuckDBPyConnection) -> int:
        if self._next_pane_id is None:
            row = con.execute("SELECT coalesce(max(pane_id) + 1, 1) FROM visdom_panes").fetchone()
            self._next_pane_id = int(row[0]) if row else 1
        pane_id = self._next_pane_id
        self._next_pane_id += 1
        return pane_id

    def _store(self, con: duckdb.DuckDBPyConnection, env: str, win: str, change: Change, opts: dict[str, Any]) -> None:
        """Write a whole window (new, or replacing one): its document and all its points."""
        self._ensure_env(con, env)
        now = time.time()
        doc = change.pane
        doc["contentID"] = secrets.token_hex(6)
        text = json.dumps(doc)
        old = self._pane(con, env, win)
        title = doc.get("title")
        title = None if title is None else str(title)
        if old is not None:
            self._flush_points(con)
            con.execute("DELETE FROM visdom_trace_points WHERE pane_id = ?", [old.pane_id])
            con.execute(
                "UPDATE visdom_panes SET type = ?, title = ?, opts = ?, doc = ?, updated_at = ? WHERE pane_id = ?",
                [doc["type"], title, _opts_json(opts), text, now, old.pane_id],
            )
            pane_id = old.pane_id
        else:
            pane_id = self._new_pane_id(con)
            row = con.execute("SELECT coalesce(max(position) + 1, 0) FROM visdom_panes WHERE env = ?", [env]).fetchone()
            position = int(row[0]) if row else 0
            con.execute(
                "INSERT INTO visdom_panes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [pane_id, env, win, doc["type"], title, position, _opts_json(opts), text, now, now],
            )
        pane = _Pane(pane_id, doc, text, opts, now, {})
        self._insert_points(con, pane, change)
        self._remember(env, win, pane)

    def _remember(self, env: str, win: str, pane: _Pane) -> None:
        if len(pane.text) <= CACHE_MAX_DOC_CHARS:
            self._panes[(env, win)] = pane
        else:
            self._panes.pop((env, win), None)

    def _insert_points(self, con: duckdb.DuckDBPyConnection, pane: _Pane, change: Change) -> None:
        """Add the change's points after each trace's last (counting from 0 for cleared traces); while
        points are deferred, into the batch's pending rows."""
        for trace in change.clear:
            pane.counts[trace] = 0
        if not change.insert:
            return
        deferred = self._deferred is not None
        parts: dict[str, list[Any]] = self._deferred if self._deferred is not None else _no_points()
        for rows in change.insert:
            n = len(rows.columns)
            start = pane.counts.get(rows.trace, 0)
            pane.counts[rows.trace] = start + n
            parts["pane_id"] += [pane.pane_id] * n
            parts["trace"] += [rows.trace] * n
            parts["seq"] += range(start, start + n)
            for name in ("x", "y", "z", "text", "color"):
                values = getattr(rows.columns, name)
                parts[name] += values if values is not None else [None] * n
        if not deferred:
            self._insert_parts(con, parts)

    @staticmethod
    def _insert_parts(con: duckdb.DuckDBPyConnection, parts: dict[str, list[Any]]) -> None:
        total = len(parts["seq"])
        if total == 0:
            return
        if total <= VALUES_MAX_ROWS:
            rows_sql = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * total)
            params = [parts[name][i] for i in range(total) for name in POINT_SCHEMA.names]
            con.execute(f"INSERT INTO visdom_trace_points VALUES {rows_sql}", params)
            return
        table = pa.table({name: pa.array(parts[name], POINT_SCHEMA.field(name).type) for name in POINT_SCHEMA.names})
        insert_rows(con, "visdom_trace_points", table)

    def _flush_points(self, con: duckdb.DuckDBPyConnection) -> None:
        """Insert the deferred points now (before SQL that reads or changes a window's points)."""
        if self._deferred is not None and self._deferred["seq"]:
            self._insert_parts(con, self._deferred)
            self._deferred = _no_points()

    def defer_points(self) -> Transaction:
        """The first write of a gRPC batch's calls: from here, their new points wait in memory ..."""

        def work(con: duckdb.DuckDBPyConnection) -> None:
            self._deferred = _no_points()

        return self._transaction(work)

    def insert_deferred_points(self) -> Transaction:
        """... and this, its last, inserts them in one statement (one INSERT per point cost ~1.4 ms
        inside the batch's transaction; 3,000 appends took 4.5 s so, 0.1 s with this)."""

        def work(con: duckdb.DuckDBPyConnection) -> None:
            self._flush_points(con)
            self._deferred = None

        return self._transaction(work)

    # -- the writes -----------------------------------------------------------------------------

    def post_window(self, post: WindowPost) -> Transaction:
        """POST /events: make (or replace) a window; the result is its id."""
        win = post.win or f"window_{secrets.token_hex(7)}"
        change = panes.new_window(post, win)  # pure, so it fails before the transaction starts

        def work(con: duckdb.DuckDBPyConnection) -> str:
            self._store(con, post.env, win, change, dict(post.opts))
            return win

        return self._transaction(work)

    def update(self, post: UpdatePost) -> Transaction:
        """POST /update; the result is the window's id. An append to a missing window makes it, as in Visdom."""

        def work(con: duckdb.DuckDBPyConnection) -> str:
            pane = self._pane(con, post.env, post.win)
            if pane is None:
                if post.append and isinstance(post.data, list) and post.data:
                    made = WindowPost(post.env, post.win, post.data, post.layout, post.opts)
                    self._store(con, post.env, post.win, panes.new_window(made, post.win), dict(post.opts))
                    return post.win
                raise NotFound(f"window {post.win!r} does not exist in env {post.env!r}; create it first")
            change = panes.update_window(pane.doc, post)
            opts = {**pane.opts, **{k: v for k, v in post.opts.items() if v is not None}}
            if change.clear:
                self._flush_points(con)
            for trace_id in change.clear:
                con.execute("DELETE FROM visdom_trace_points WHERE pane_id = ? AND trace = ?", [pane.pane_id, trace_id])
            self._insert_points(con, pane, change)
            now = time.time()
            text = json.dumps(change.pane)
            if text != pane.text or opts != pane.opts:
                change.pane["contentID"] = secrets.token_hex(6)
                text = json.dumps(change.pane)
                con.execute(
                    "UPDATE visdom_panes SET opts = ?, doc = ?, updated_at = ? WHERE pane_id = ?",
                    [_opts_json(opts), text, now, pane.pane_id],
                )
                pane.touched = now
            elif now - pane.touched >= TOUCH_SECONDS:
                con.execute("UPDATE visdom_panes SET updated_at = ? WHERE pane_id = ?", [now, pane.pane_id])
                pane.touched = now
            pane.doc, pane.text, pane.opts = change.pane, text, opts
            self._remember(post.env, post.win, pane)
            return post.win

        def append_only(con: duckdb.DuckDBPyConnection) -> Any:
            """The usual append (a cached window, new points, the same document, no touch due): one INSERT."""
            pane = self._panes.get((post.env, post.win))
            if pane is None or time.time() - pane.touched >= TOUCH_SECONDS:
                return NEEDS_TRANSACTION
            change = panes.update_window(pane.doc, post)  # pure: the cached pane is not changed
            opts = {**pane.opts, **{k: v for k, v in post.opts.items() if v is not None}}
            if change.clear or not change.insert or opts != pane.opts or json.dumps(change.pane) != pane.text:
                return NEEDS_TRANSACTION
            self._insert_points(con, pane, change)  # one statement; if it fails, _forget drops the caches
            return post.win

        return self._transaction(work, single=append_only)

    @staticmethod
    def _wins(con: duckdb.DuckDBPyConnection, env: str) -> list[str]:
        """The env's windows as this transaction leaves them (for the event loop's WindowIndex)."""
        return [w for (w,) in con.execute("SELECT win FROM visdom_panes WHERE env = ?", [env]).fetchall()]

    def close(self, env: str, win: str | None) -> Transaction:
        """POST /close: remove a window, or every window of the env; the result is the env's windows left."""

        def work(con: duckdb.DuckDBPyConnection) -> list[str]:
            where, params = ("env = ?", [env]) if win is None else ("env = ? AND win = ?", [env, win])
            self._flush_points(con)
            con.execute(
                f"DELETE FROM visdom_trace_points WHERE pane_id IN (SELECT pane_id FROM visdom_panes WHERE {where})",
                params,
            )
            con.execute(f"DELETE FROM visdom_panes WHERE {where}", params)
            for key in [k for k in self._panes if k[0] == env and (win is None or k[1] == win)]:
                del self._panes[key]
            return self._wins(con, env)

        return self._transaction(work)

    def delete_env(self, env: str) -> Transaction:
        close = self.close(env, None).work

        def work(con: duckdb.DuckDBPyConnection) -> None:
            close(con)
            con.execute("DELETE FROM visdom_envs WHERE env = ?", [env])
            if self._envs is not None:
                self._envs.discard(env)

        return self._transaction(work)

    def create_env(self, env: str) -> Transaction:
        """POST /env/ENV (the client does it at start): the env exists from then on, even empty."""
        return self._transaction(lambda con: self._ensure_env(con, env))

    def fork_env(self, fork: ForkEnv) -> Transaction:
        """Copy every window (and point) of one env into another, replacing what the target held;
        the result is the target's windows."""
        close = self.close(fork.target, None).work

        def work(con: duckdb.DuckDBPyConnection) -> list[str]:
            exists = con.execute("SELECT count(*) FROM visdom_envs WHERE env = ?", [fork.source]).fetchone()
            if not exists or not exists[0]:
                raise NotFound(f"env {fork.source!r} does not exist, so it cannot be forked")
            if fork.source == fork.target:
                return self._wins(con, fork.target)
            close(con)
            self._ensure_env(con, fork.target)
            rows = con.execute(
                "SELECT pane_id, win, type, title, position, opts, doc FROM visdom_panes "
                "WHERE env = ? ORDER BY position",
                [fork.source],
            ).fetchall()
            now = time.time()
            for old_id, win, kind, title, position, opts, doc in rows:
                new_id = self._new_pane_id(con)
                con.execute(
                    "INSERT INTO visdom_panes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [new_id, fork.target, win, kind, title, position, opts, doc, now, now],
                )
                self._flush_points(con)
                con.execute(
                    "INSERT INTO visdom_trace_points SELECT ?, trace, seq, x, y, z, text, color "
                    "FROM visdom_trace_points WHERE pane_id = ?",
                    [new_id, old_id],
                )
            return self._wins(con, fork.target)

        return self._transaction(work)

    def set_window_data(self, request: SetWindowData) -> Transaction:
        """POST /win_data with data: windows given whole (with win None, the env's windows are replaced)."""
        changes = {
            win: panes.restore_window({**pane, "id": pane.get("id", win)}) for win, pane in request.panes.items()
        }
        close = self.close(request.env, None).work

        def work(con: duckdb.DuckDBPyConnection) -> list[str]:
            if request.win is None:
                close(con)
            for win, change in changes.items():
                self._store(con, request.env, win, change, {})
            return self._wins(con, request.env)

        return self._transaction(work)


def _no_points() -> dict[str, list[Any]]:
    return {name: [] for name in POINT_SCHEMA.names}


# -- reads (any thread, on a reader cursor) -----------------------------------------------------


def window_index(cur: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Every env and its windows (the event loop's WindowIndex, loaded once at start)."""
    index: dict[str, set[str]] = {env: set() for env in env_names(cur)}
    for env, win in cur.execute("SELECT env, win FROM visdom_panes").fetchall():
        index.setdefault(env, set()).add(win)
    return index


def windows_of(cur: duckdb.DuckDBPyConnection, envs: list[str]) -> dict[str, set[str]]:
    """The windows of those of `envs` that exist (an env with none maps to an empty set)."""
    found: dict[str, set[str]] = {
        env: set() for (env,) in cur.execute("SELECT env FROM visdom_envs WHERE env IN ?", [envs]).fetchall()
    }
    for env, win in cur.execute("SELECT env, win FROM visdom_panes WHERE env IN ?", [envs]).fetchall():
        found.setdefault(env, set()).add(win)
    return found


def env_names(cur: duckdb.DuckDBPyConnection) -> list[str]:
    return [env for (env,) in cur.execute("SELECT env FROM visdom_envs ORDER BY env").fetchall()]


def _points(cur: duckdb.DuckDBPyConnection, pane_id: int) -> dict[int, Columns]:
    table = cur.execute(
        "SELECT trace, x, y, z, text, color FROM visdom_trace_points WHERE pane_id = ? ORDER BY trace, seq", [pane_id]
    ).to_arrow_table()
    return _columns_by_trace(table)


def _columns_by_trace(table: pa.Table) -> dict[int, Columns]:
    out: dict[int, Columns] = {}
    if table.num_rows == 0:
        return out
    traces = table.column("trace").to_pylist()
    data = {name: table.column(name).to_pylist() for name in ("x", "y", "z", "text", "color")}
    start = 0
    for i in range(1, len(traces) + 1):
        if i == len(traces) or traces[i] != traces[start]:
            out[int(traces[start])] = Columns(*(data[name][start:i] for name in ("x", "y", "z", "text", "color")))
            start = i
    return out


def windows(cur: duckdb.DuckDBPyConnection, env: str, win: str | None) -> dict[str, dict[str, Any]]:
    """Windows as Visdom returns them from /win_data (every point), by id, in their order."""
    where, params = ("env = ?", [env]) if win is None else ("env = ? AND win = ?", [env, win])
    rows = cur.execute(
        f"SELECT pane_id, win, doc, position FROM visdom_panes WHERE {where} ORDER BY position", params
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for pane_id, name, doc, position in rows:
        pane = panes.join_window(json.loads(doc), _points(cur, int(pane_id)))
        pane["i"] = int(position)
        out[str(name)] = pane
    return out


def window_hash(cur: duckdb.DuckDBPyConnection, env: str, win: str) -> str | None:
    found = windows(cur, env, win).get(win)
    if found is None:
        return None
    return hashlib.md5(json.dumps(found, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
