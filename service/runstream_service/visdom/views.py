"""What the web UI's Visdom view reads: envs, and windows shaped for drawing (read cursor, any thread).

A window comes as `{win, type, title, opts, order, width, height, updated_at, content}`. Plot content is
the Plotly figure; a line or scatter trace longer than 4 x `width` points comes M4-downsampled in
DuckDB (per column of about n / width consecutive points: the first, the last, the lowest and the
highest y, as store/downsample.py does for scalars), so a 1M-point line arrives as a few thousand
points that draw the same picture and keep every spike; such a trace says `"downsampled": true,
"points": N`. Text, SVG, audio and video panes come as `{"html": ...}` exactly as logged (the UI
sanitises), images as `{"src", "caption", "history", "selected"}`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

from runstream_service.errors import NotFound
from runstream_service.visdom import panes
from runstream_service.visdom.panes import Columns
from runstream_service.visdom.routes import Changes, Reader
from runstream_service.visdom.storage import _columns_by_trace

EXACT_FACTOR = 4  # up to 4 x width points a trace is sent whole


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def list_envs(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = cur.execute(
        """
        SELECT e.env, count(p.pane_id), coalesce(max(p.updated_at), e.created_at)
        FROM visdom_envs e LEFT JOIN visdom_panes p USING (env)
        GROUP BY e.env, e.created_at ORDER BY e.env
        """
    ).fetchall()
    return [{"env": env, "windows": int(n), "updated_at": _iso(float(t))} for env, n, t in rows]


def env_windows(cur: duckdb.DuckDBPyConnection, env: str, win: str | None, width: int) -> list[dict[str, Any]]:
    """The env's windows (or the one named), in order; NotFound for an unknown env or window."""
    known = cur.execute("SELECT count(*) FROM visdom_envs WHERE env = ?", [env]).fetchone()
    if not known or not known[0]:
        raise NotFound(f"no Visdom env {env!r}; GET /api/visdom/envs lists them")
    where, params = ("env = ?", [env]) if win is None else ("env = ? AND win = ?", [env, win])
    rows = cur.execute(
        f"SELECT pane_id, win, type, title, position, opts, doc, updated_at FROM visdom_panes WHERE {where} "
        "ORDER BY position",
        params,
    ).fetchall()
    if win is not None and not rows:
        raise NotFound(f"no window {win!r} in Visdom env {env!r}")
    return [_window(cur, width, *row) for row in rows]


def _window(
    cur: duckdb.DuckDBPyConnection,
    width: int,
    pane_id: int,
    win: str,
    kind: str,
    title: str | None,
    position: int,
    opts: str,
    doc_text: str,
    updated_at: float,
) -> dict[str, Any]:
    doc = json.loads(doc_text)
    shown, content = _content(cur, int(pane_id), kind, doc, width)
    return {
        "win": win,
        "type": shown,
        "title": title or "",
        "opts": json.loads(opts),
        "order": int(position),
        "width": doc.get("width"),
        "height": doc.get("height"),
        "updated_at": _iso(float(updated_at)),
        "content": content,
    }


def _content(
    cur: duckdb.DuckDBPyConnection, pane_id: int, kind: str, doc: dict[str, Any], width: int
) -> tuple[str, Any]:
    content = doc.get("content")
    if kind == "plot" and isinstance(content, dict):
        traces = [_trace(cur, pane_id, trace, width) for trace in content.get("data", [])]
        return "plot", {"data": traces, "layout": content.get("layout", {})}
    if kind == "text":
        html = content if isinstance(content, str) else str(content)
        head = html.lstrip()[:200].lower()
        shown = (
            "svg"
            if head.startswith("<svg")
            else "audio"
            if "<audio" in head
            else "video"
            if "<video" in head
            else "text"
        )
        return shown, {"html": html}
    if kind == "image":
        image = content if isinstance(content, dict) else {}
        return "image", {"src": image.get("src"), "caption": image.get("caption"), "history": [], "selected": 0}
    if kind == "image_history":
        history = [item for item in content if isinstance(item, dict)] if isinstance(content, list) else []
        selected = min(max(int(doc.get("selected", 0)), 0), max(len(history) - 1, 0))
        current = history[selected] if history else {}
        return "image", {
            "src": current.get("src"),
            "caption": current.get("caption"),
            "history": history,
            "selected": selected,
        }
    return kind, content


def _trace(cur: duckdb.DuckDBPyConnection, pane_id: int, trace: dict[str, Any], width: int) -> dict[str, Any]:
    if "_rs_trace" not in trace:
        return trace
    trace_id = int(trace["_rs_trace"])
    found = cur.execute(
        "SELECT count(*) FROM visdom_trace_points WHERE pane_id = ? AND trace = ?", [pane_id, trace_id]
    ).fetchone()
    count = int(found[0]) if found else 0
    if count <= EXACT_FACTOR * width:
        table = cur.execute(
            "SELECT trace, x, y, z, text, color FROM visdom_trace_points WHERE pane_id = ? AND trace = ? ORDER BY seq",
            [pane_id, trace_id],
        ).to_arrow_table()
        return panes.join_trace(trace, _columns_by_trace(table).get(trace_id, Columns([], [])))
    step = -(-count // width)  # points per column
    table = cur.execute(
        """
        WITH p AS (SELECT seq, x, y, z, text, color FROM visdom_trace_points WHERE pane_id = $1 AND trace = $2),
        keep AS (
            SELECT unnest([min(seq), max(seq), arg_min(seq, y), arg_max(seq, y)]) AS seq
            FROM p GROUP BY seq // $3
        )
        SELECT $2 AS trace, x, y, z, text, color FROM p WHERE seq IN (SELECT seq FROM keep) ORDER BY seq
        """,
        [pane_id, trace_id, step],
    ).to_arrow_table()
    joined = panes.join_trace(trace, _columns_by_trace(table).get(trace_id, Columns([], [])))
    return {**joined, "downsampled": True, "points": count}


class ViewReads:
    """The web UI's Visdom reads (runstream_dashboards.ports.VisdomReads) over a reader and the change feed."""

    def __init__(self, reader: Reader, changes: Changes) -> None:
        self._reader = reader
        self._changes = changes

    async def envs(self) -> list[dict[str, Any]]:
        return await self._reader.run(list_envs)

    async def env(self, env: str, width: int) -> dict[str, Any]:
        found = await self._reader.run(lambda cur: env_windows(cur, env, None, width))
        return {"env": env, "windows": found}

    async def window(self, env: str, win: str, width: int) -> dict[str, Any]:
        found = await self._reader.run(lambda cur: env_windows(cur, env, win, width))
        return found[0]

    @property
    def commit_number(self) -> int:
        return self._changes.commit_number

    def windows_changed_since(self, commit_number: int) -> list[dict[str, str | None]]:
        return self._changes.windows_changed_since(commit_number)
