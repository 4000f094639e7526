"""Where the page's reads find the points of the kinds other than scalars (histograms, images, texts, ...).

On one server's file: the kind's point table, by the series id the file gave the run's tag. On a lake server
(the lake attached on the cursor's database): the kind's documented view, which there reads this server's
unmoved outbox and the lake (store/lake_store.py's show_the_lake), so its tabs show every server's points.
Either way a read gets a relation with the point table's columns after series_id (step, rank, wall_time,
then the kind's values), and its named parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from runstream_service.errors import NotFound
from runstream_service.store.kinds import Kind
from runstream_service.store.lake import LAKE


@dataclass(frozen=True)
class Points:
    sql: str  # a relation, in parentheses
    params: dict[str, Any]  # its named parameters ($run, $tag or $series)


def lake_attached(cur: duckdb.DuckDBPyConnection) -> bool:
    rows = cur.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [LAKE]).fetchall()
    return bool(rows[0][0])


def known_runs(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> None:
    """Raise NotFound naming the run ids that neither this file nor (on a lake server) the lake knows."""
    marks = ", ".join("?" for _ in run_ids)
    tables = ["run_meta", f"{LAKE}.lake_runs"] if lake_attached(cur) else ["run_meta"]
    known = " UNION ".join(f"SELECT run_id FROM {table} WHERE run_id IN ({marks})" for table in tables)
    found = {r for (r,) in cur.execute(known, run_ids * len(tables)).fetchall()}
    missing = [r for r in run_ids if r not in found]
    if missing:
        raise NotFound(f"unknown run id(s): {', '.join(missing)}")


def find(cur: duckdb.DuckDBPyConnection, kind: Kind, run_id: str, tag: str) -> Points | None:
    """The points of the run's tag of `kind`, or None when the run has no such tag (the run must be known)."""
    if lake_attached(cur):
        points = Points(
            f"(SELECT * EXCLUDE (run_id, tag) FROM {kind.view} WHERE run_id = $run AND tag = $tag)",
            {"run": run_id, "tag": tag},
        )
        exists = cur.execute(f"SELECT EXISTS (SELECT 1 FROM {points.sql})", points.params).fetchall()[0][0]
        return points if exists else None
    rows = cur.execute(
        "SELECT series_id FROM series WHERE run_id = ? AND kind = ? AND tag = ?", [run_id, kind.name, tag]
    ).fetchall()
    if not rows:
        return None
    return Points(f"(SELECT * EXCLUDE (series_id) FROM {kind.table} WHERE series_id = $series)", {"series": rows[0][0]})


def series(cur: duckdb.DuckDBPyConnection, kind: Kind, run_id: str, tag: str) -> Points:
    """The points of the run's tag of `kind`; NotFound for an unknown run or a tag the run lacks."""
    known_runs(cur, [run_id])
    points = find(cur, kind, run_id, tag)
    if points is None:
        raise NotFound(f"no {kind.name} tag {tag!r} in run {run_id}")
    return points


def of_run(cur: duckdb.DuckDBPyConnection, kind: Kind, run_id: str) -> Points:
    """Every point of `kind` of one run, with its tag first (NotFound for an unknown run)."""
    known_runs(cur, [run_id])
    if lake_attached(cur):
        return Points(f"(SELECT * EXCLUDE (run_id) FROM {kind.view} WHERE run_id = $run)", {"run": run_id})
    return Points(
        f"(SELECT s.tag, p.* EXCLUDE (series_id) FROM {kind.table} p JOIN series s USING (series_id) "
        f"WHERE s.run_id = $run AND s.kind = '{kind.name}')",
        {"run": run_id},
    )


def every(cur: duckdb.DuckDBPyConnection, kind: Kind) -> str:
    """Every point of `kind`, of every run, with its run_id and tag first (a relation without parameters)."""
    if lake_attached(cur):
        return f"(SELECT * FROM {kind.view})"
    return (
        f"(SELECT s.run_id, s.tag, p.* EXCLUDE (series_id) FROM {kind.table} p JOIN series s USING (series_id) "
        f"WHERE s.kind = '{kind.name}')"
    )
