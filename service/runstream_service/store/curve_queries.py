"""Reads for the web UI's PR curves, custom-scalar layouts and tag names. No HTTP here.

A PR curve of T thresholds is stored as six arrays of T values (TensorBoard's layout); threshold i
is i / (T - 1), as tensorboardX computes its counts. A request names a step; each run answers
with its curve at the last step at or before it (its first when it has none that early), so runs
that logged at different steps can still be compared on one slider. Layouts and tag names are
one row per run (and tag): the last one a writer sent.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from runstream_service.errors import NotFound
from runstream_service.store import series_points
from runstream_service.store.kinds import PR_CURVE
from runstream_service.store.lake import LAKE
from runstream_service.store.series_points import Points

PR_COLUMNS = ("true_positives", "false_positives", "true_negatives", "false_negatives", "precision", "recall")


def _pr_series(cur: duckdb.DuckDBPyConnection, run_ids: list[str], tag: str) -> list[tuple[str, Points]]:
    """(run id, its points of the tag) of each run that has it, in the order asked."""
    series_points.known_runs(cur, run_ids)
    found = [(run_id, series_points.find(cur, PR_CURVE, run_id, tag)) for run_id in run_ids]
    series = [(run_id, points) for run_id, points in found if points is not None]
    if not series:
        raise NotFound(f"no PR curve tag {tag!r} in run(s) {', '.join(run_ids)}")
    return series


def pick_step(steps: list[int], wanted: int | None) -> int:
    """The last of `steps` (ascending, not empty) at or before `wanted`; the first if none is that early;
    the last without `wanted` (the slider starts at the end)."""
    if wanted is None:
        return steps[-1]
    before = [s for s in steps if s <= wanted]
    return before[-1] if before else steps[0]


def thresholds(count: int) -> list[float]:
    """TensorBoard's thresholds of a curve of `count` points: evenly spaced from 0 to 1."""
    return [i / (count - 1) for i in range(count)] if count > 1 else [0.0]


def pr_curves(cur: duckdb.DuckDBPyConnection, run_ids: list[str], tag: str, step: int | None) -> list[dict[str, Any]]:
    """Per run that has the tag: its steps and its curve at the step `pick_step` chooses (rank 0 first)."""
    result = []
    for run_id, points in _pr_series(cur, run_ids, tag):
        read = cur.execute(f"SELECT DISTINCT step FROM {points.sql} ORDER BY step", points.params).fetchall()
        steps = [int(s) for (s,) in read]
        if not steps:
            continue
        chosen = pick_step(steps, step)
        row = cur.execute(
            f"SELECT rank, wall_time, thresholds, {', '.join(PR_COLUMNS)} FROM {points.sql} "
            "WHERE step = $step ORDER BY rank, wall_time DESC LIMIT 1",
            {**points.params, "step": chosen},
        ).fetchone()
        assert row is not None  # the step was just read from the same points
        curve = {name: list(values) for name, values in zip(PR_COLUMNS, row[3:])}
        result.append(
            {"run_id": run_id, "steps": steps, "step": chosen, "rank": row[0], "wall_time": row[1]}
            | {"thresholds": thresholds(int(row[2]))}
            | curve
        )
    return result


def custom_scalar_layouts(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[dict[str, Any]]:
    """The custom-scalar layout of each of the runs that has one, in the order the runs were asked."""
    series_points.known_runs(cur, run_ids)
    rows = dict(
        cur.execute(
            f"SELECT DISTINCT ON (run_id) run_id, layout FROM {_newest('custom_scalar_layouts', cur)} "
            "WHERE list_contains(?, run_id) ORDER BY run_id, updated_at DESC",
            [run_ids],
        ).fetchall()
    )
    return [{"run_id": r, "layout": json.loads(rows[r])} for r in run_ids if rows.get(r)]


def tag_info(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, dict[str, str]]:
    """tag -> {display_name, description} over the runs; where runs disagree, the last one written wins."""
    series_points.known_runs(cur, run_ids)
    rows = cur.execute(
        f"SELECT tag, display_name, description FROM {_newest('tag_info', cur)} WHERE list_contains(?, run_id) "
        "ORDER BY updated_at, run_id",
        [run_ids],
    ).fetchall()
    return {tag: {"display_name": name or "", "description": text or ""} for tag, name, text in rows}


def _newest(table: str, cur: duckdb.DuckDBPyConnection) -> str:
    """The file's `table` (tag_info or custom_scalar_layouts); on a lake server with the lake's rows too (every
    server's batches), which the reads above order by updated_at as they order the file's."""
    if not series_points.lake_attached(cur):
        return table
    return f"(SELECT * FROM {table} UNION ALL SELECT * FROM {LAKE}.lake_{table})"
