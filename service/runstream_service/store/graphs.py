"""The Graphs tab's reads: a run's graphs (counts only) and one graph's document.

Plain SQL over graph_points on the caller's cursor. The document is returned as the JSON text
stored, so the app sends it without parsing and re-encoding a ResNet-sized document.
"""

from __future__ import annotations

from typing import Any

import duckdb

from runstream_service.errors import NotFound
from runstream_service.store.queries import known_runs


def list_graphs(cur: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """Every graph of a run, by tag, step and rank: its counts, not its document."""
    known_runs(cur, [run_id])
    rows = cur.execute(
        "SELECT s.tag, p.step, p.rank, p.wall_time, p.nodes, p.edges, p.parameters "
        "FROM graph_points p JOIN series s USING (series_id) WHERE s.run_id = ? AND s.kind = 'graph' "
        "ORDER BY s.tag, p.step, p.rank",
        [run_id],
    ).fetchall()
    keys = ("tag", "step", "rank", "wall_time", "nodes", "edges", "parameters")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def graph_doc(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int | None, rank: int) -> str:
    """One graph's document as stored (JSON text); `step` None is the tag's last graph."""
    known_runs(cur, [run_id])
    row = cur.execute(
        "SELECT p.doc FROM graph_points p JOIN series s USING (series_id) "
        "WHERE s.run_id = ? AND s.kind = 'graph' AND s.tag = ? AND p.rank = ? AND (? IS NULL OR p.step = ?) "
        "ORDER BY p.step DESC LIMIT 1",
        [run_id, tag, rank, step, step],
    ).fetchone()
    if row is None:
        at = "" if step is None else f" at step {step}"
        raise NotFound(f"no graph tag {tag!r}{at} (rank {rank}) in run {run_id}; GET /api/graphs?run= lists them")
    return str(row[0])
