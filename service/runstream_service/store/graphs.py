"""The Graphs tab's reads: a run's graphs (counts only) and one graph's document.

Plain SQL over the graphs' points (store/series_points.py: graph_points, or on a lake server the lake's too)
on the caller's cursor. The document is returned as the JSON text
stored, so the app sends it without parsing and re-encoding a ResNet-sized document.
"""

from __future__ import annotations

from typing import Any

import duckdb

from runstream_service.errors import NotFound
from runstream_service.store import series_points
from runstream_service.store.kinds import GRAPH


def list_graphs(cur: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """Every graph of a run, by tag, step and rank: its counts, not its document."""
    points = series_points.of_run(cur, GRAPH, run_id)
    rows = cur.execute(
        f"SELECT tag, step, rank, wall_time, nodes, edges, parameters FROM {points.sql} ORDER BY tag, step, rank",
        points.params,
    ).fetchall()
    keys = ("tag", "step", "rank", "wall_time", "nodes", "edges", "parameters")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def graph_doc(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int | None, rank: int) -> str:
    """One graph's document as stored (JSON text); `step` None is the tag's last graph."""
    points = series_points.of_run(cur, GRAPH, run_id)
    row = cur.execute(
        f"SELECT doc FROM {points.sql} WHERE tag = $tag AND rank = $rank AND ($step IS NULL OR step = $step) "
        "ORDER BY step DESC LIMIT 1",
        {**points.params, "tag": tag, "rank": rank, "step": step},
    ).fetchone()
    if row is None:
        at = "" if step is None else f" at step {step}"
        raise NotFound(f"no graph tag {tag!r}{at} (rank {rank}) in run {run_id}; GET /api/graphs?run= lists them")
    return str(row[0])
