"""The page's reads on a lake server (store/lake.py): runs, tags and scalar series of the whole lake, not
only of this server's file. Same signatures and shapes as store/queries.py's list_runs, list_tags and
scalar_series, so the dashboard picks one or the other through one seam (AppDeps.reads).

What a read sees, and why it is exact
-------------------------------------
A point is in the lake (``lake.lake_scalars``, put there by some server's mover) or still in this server's
outbox (acknowledged here, not moved yet). A read takes both: the lake's points UNION ALL the outbox rows
whose batch the lake does not hold (its key is not in ``lake.lake_batches``, its seq past its writer's mark in
``lake.lake_writer_marks``). The mover commits a batch's points and its key in one lake
transaction, and deletes the batch from the outbox only after that commit; a read pins its local snapshot
before its lake snapshot (`_pinned`), so whichever instant it runs in, each point counts once:
outbox row seen and key not in its lake snapshot -> the row counts; key in its lake snapshot -> the
lake's copy counts; outbox row already deleted -> the lake commit came earlier, so its lake snapshot has it.
Other servers' unmoved points are not visible until their movers move them (about ``move_seconds``).

Downsampling is the local path's M4 (store/downsample.py's `assemble` and `exact`: first, last, smallest and
largest value per pixel column, so no spike is hidden). On the step axis it reads rollup partials, as one
server's file does (store/queries.py): the mover puts every move's partials, every level, into
``lake.lake_rollups`` in the same lake transaction as the points (so they count exactly once, as the points
do); a read combines the lake's partials of the level it needs (several per bucket: one per move and server
that had points there) with partials of the unmoved outbox points (store/rollups.py), so it costs
O(columns x moves), not O(points), and equals M4 over every point. The wall-time axes still aggregate the
points in range (the lake keeps no time tiers): their run and tag filters are pushed into the lake scan, where
Parquet row-group statistics skip the groups of other runs and tags (the mover writes points sorted by run,
tag and step), but a read costs O(points in range): see README "Scale-out on DuckLake" for the measured cost.

What the runs list adds from elsewhere: labels (tags, note, archived) are this server's own; a run deleted
through this server is left out here (deletion does not reach the lake); last step and time come from
`progress`, which store/lake_changes.py keeps from the lake's insertions, and this server's series_stats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runstream_service.errors import NotFound, TooLarge
from runstream_service.store.downsample import Downsampled, assemble, exact, sql_double
from runstream_service.store.kinds import BY_NAME, KINDS
from runstream_service.store.lake import LAKE, lake_table
from runstream_service.store.lake_store import UNMOVED_SCALARS
from runstream_service.store.queries import RunGroups, columns_downsampled, group_extent, time_columns_sql
from runstream_service.store.rollups import (
    FIELDS,
    LEVEL_MAX,
    LEVEL_MIN,
    NO_STEP,
    Partials,
    from_points,
    level_for,
)

T = TypeVar("T")

UNMOVED = f"({UNMOVED_SCALARS})"  # the outbox's points not in the lake yet
RUNS = f"""(
    SELECT run_id, project, name, status, created_at, finished_at, host, world_size, config FROM {LAKE}.lake_runs
    UNION ALL
    SELECT run_id, project, name, status, created_at, finished_at, host, world_size, CAST(config AS VARCHAR)
    FROM run_meta WHERE run_id NOT IN (SELECT run_id FROM {LAKE}.lake_runs)
)"""

# Each run's newest name and labels: the lake's, or this server's change not moved yet when that is newer.
# (A run with neither: its own name, and labels from this server's file, as one server has them.)
LABELS = f"""(
    SELECT DISTINCT ON (run_id) run_id, name, tags, note, archived FROM (
        SELECT run_id, name, tags, note, archived, noted_at FROM {LAKE}.lake_run_labels
        UNION ALL
        SELECT run_id, name, tags, note, archived, noted_at FROM lake_outbox_labels
    ) ORDER BY run_id, noted_at DESC
)"""

Progress = Mapping[str, tuple[int, float]]  # run id -> (last step, last wall time) of its points in the lake


def _pinned(cur: duckdb.DuckDBPyConnection, read: Callable[[], T]) -> T:
    """`read()` in one read transaction whose local snapshot is taken before its lake snapshot (the order
    the module docstring's exactness argument needs): DuckDB starts each attached database's transaction
    when the transaction first touches it."""
    cur.execute("BEGIN TRANSACTION")
    try:
        cur.execute("SELECT count(*) FROM lake_outbox_batches").fetchall()
        return read()
    finally:
        cur.execute("ROLLBACK")


def _marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


class LakeReads:
    """store/queries.py's runs, tags and scalar series, over the lake and this server's unmoved outbox."""

    def __init__(self, progress: Callable[[], Progress] = dict) -> None:
        self._progress = progress

    def list_projects(self, cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
        rows = cur.execute(
            f"SELECT project, count(*) FROM {RUNS} WHERE run_id NOT IN (SELECT run_id FROM deleted_runs) "
            "GROUP BY project ORDER BY project"
        ).fetchall()
        return [{"project": p, "runs": n} for p, n in rows]

    def list_runs(
        self, cur: duckdb.DuckDBPyConnection, project: str | None, text: str | None, config: dict[str, str]
    ) -> list[dict[str, Any]]:
        where, params = ["r.run_id NOT IN (SELECT run_id FROM deleted_runs)"], []
        if project:
            where.append("r.project = ?")
            params.append(project)
        if text:
            where.append("(coalesce(n.name, r.name) ILIKE ? OR r.run_id ILIKE ?)")
            params += [f"%{text}%", f"%{text}%"]
        for key, value in config.items():
            where.append("json_extract_string(r.config, ?) = ?")
            params += [f"$.{json.dumps(key)}", value]
        rows = cur.execute(
            f"""
            SELECT r.run_id, r.project, coalesce(n.name, r.name), r.status, r.created_at, r.finished_at, r.host,
                   r.world_size, r.config, s.last_step, s.last_time,
                   coalesce(n.tags, l.tags, CAST([] AS VARCHAR[])), coalesce(n.note, l.note, ''),
                   coalesce(n.archived, l.archived, false)
            FROM {RUNS} r
            LEFT JOIN {LABELS} n USING (run_id)
            LEFT JOIN run_labels l USING (run_id)
            LEFT JOIN (
                SELECT se.run_id, max(st.last_step) AS last_step, max(st.last_wall) AS last_time
                FROM series_stats st JOIN series se USING (series_id) GROUP BY se.run_id
            ) s USING (run_id)
            WHERE {" AND ".join(where)}
            ORDER BY r.created_at DESC
            """,
            params,
        ).fetchall()
        progress = self._progress()
        unseen = [row[0] for row in rows if row[9] is None and row[0] not in progress]
        if unseen:  # moved into the lake since the watch's last look (once a second): read here, not left empty
            progress = {**progress, **_lake_progress(cur, unseen)}
        names = ("run_id", "project", "name", "status", "created_at", "finished_at", "host", "world_size")
        runs = []
        for row in rows:
            run = dict(zip(names, row[:8]))
            run["config"] = json.loads(row[8]) if row[8] else {}
            run["last_step"], run["last_time"] = _later((row[9], row[10]), progress.get(row[0]))
            run["tags"], run["note"], run["archived"] = list(row[11]), row[12], row[13]
            runs.append(run)
        return runs

    def list_tags(self, cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, list[str]]:
        def read() -> list[tuple[str, str]]:
            _known_runs(cur, run_ids)
            marks = _marks(run_ids)
            in_lake = " ".join(
                f"UNION SELECT '{kind.name}', tag FROM {lake_table(kind)} WHERE run_id IN ({marks})" for kind in KINDS
            )
            rows: list[tuple[str, str]] = cur.execute(
                f"SELECT DISTINCT kind, tag FROM series WHERE run_id IN ({marks}) {in_lake}",
                run_ids * (1 + len(KINDS)),
            ).fetchall()
            return rows

        tags: dict[str, list[str]] = {kind.view: [] for kind in KINDS}
        for kind, tag in sorted(_pinned(cur, read), key=lambda row: row[1]):
            tags[BY_NAME[kind].view].append(tag)
        return tags

    def scalar_points(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_id: str,
        tag: str,
        x_min: float | None,
        x_max: float | None,
        limit: int,
    ) -> dict[str, np.ndarray]:
        """Every point of one scalar series in the lake and this server's outbox (each once), by step and
        rank, as queries.scalar_points; TooLarge past `limit`."""
        return _pinned(cur, lambda: _points(cur, run_id, tag, x_min, x_max, limit))

    def scalar_series(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_ids: list[str],
        tag: str,
        x_axis: str,
        x_min: float | None,
        x_max: float | None,
        width: int,
    ) -> list[tuple[str, Downsampled]]:
        """M4-downsampled series of `tag` for each run that has it, in the order of `run_ids`; a series
        with no more points in range than `width` is read again, exactly (as queries.scalar_series)."""
        return _pinned(cur, lambda: _scalar_series(cur, run_ids, tag, x_axis, x_min, x_max, width))

    def scalar_groups(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_ids: list[str],
        tag: str,
        key: str,
        x_axis: str,
        x_min: float | None,
        x_max: float | None,
        width: int,
    ) -> list[dict[str, Any]]:
        """queries.scalar_groups over the lake and this server's outbox: the same columns and means. Read from
        the points, not the rollups, on every axis: it costs O(the runs' points of `tag`)."""
        return _pinned(cur, lambda: _scalar_groups(cur, run_ids, tag, key, x_axis, x_min, x_max, width))

    def last_values(
        self, cur: duckdb.DuckDBPyConnection, run_ids: list[str]
    ) -> list[tuple[str, str, int, float | None]]:
        """queries.last_values over the lake and this server's outbox (one scan of these runs' points)."""
        if not run_ids:
            return []
        marks = _marks(run_ids)
        query = f"""
            SELECT run_id, tag, max(step), arg_max(value, {{'step': step, 'rank': -rank, 'wall': wall_time}})
            FROM (
                SELECT run_id, tag, step, rank, wall_time, value FROM {UNMOVED} WHERE run_id IN ({marks})
                UNION ALL
                SELECT run_id, tag, step, rank, wall_time, value FROM {LAKE}.lake_scalars WHERE run_id IN ({marks})
            ) GROUP BY run_id, tag"""
        rows: list[tuple[str, str, int, float | None]] = _pinned(
            cur, lambda: cur.execute(query, run_ids * 2).fetchall()
        )
        return rows


def _points(
    cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, x_min: float | None, x_max: float | None, limit: int
) -> dict[str, np.ndarray]:
    _known_runs(cur, [run_id])
    where, params = "run_id = ? AND tag = ?", [run_id, tag]
    if x_min is not None:
        where += f" AND step >= {math.ceil(x_min)}"
    if x_max is not None:
        where += f" AND step <= {math.floor(x_max)}"
    source = (
        f"(SELECT step, rank, wall_time, value FROM {LAKE}.lake_scalars WHERE {where} "
        f"UNION ALL SELECT step, rank, wall_time, value FROM {UNMOVED} WHERE {where})"
    )
    (count,) = cur.execute(f"SELECT count(*) FROM {source}", params * 2).fetchall()[0]
    has_tag = (
        f"SELECT EXISTS (SELECT 1 FROM {LAKE}.lake_scalars WHERE run_id = ? AND tag = ?) "
        f"OR EXISTS (SELECT 1 FROM {UNMOVED} WHERE run_id = ? AND tag = ?)"
    )
    if count == 0 and not cur.execute(has_tag, [run_id, tag] * 2).fetchall()[0][0]:
        raise NotFound(f"no scalar tag {tag!r} in run(s) {run_id}")
    if count > limit:
        raise TooLarge(f"{count:,} points, more than {limit:,}: read a step range at a time (x_min, x_max)")
    table = cur.execute(f"SELECT * FROM {source} ORDER BY step, rank", params * 2).fetchnumpy()
    return {name: np.asarray(table[name]) for name in ("step", "rank", "wall_time", "value")}


def _scalar_groups(
    cur: duckdb.DuckDBPyConnection,
    run_ids: list[str],
    tag: str,
    key: str,
    x_axis: str,
    x_min: float | None,
    x_max: float | None,
    width: int,
) -> list[dict[str, Any]]:
    _known_runs(cur, run_ids)
    points, parameters = points_sql(len(run_ids)), _points_params(run_ids, tag)
    stats: dict[int, tuple[Any, ...]] = {
        int(row[0]): row[1:]
        for row in cur.execute(
            f"SELECT s, count(*), min(step), max(step), min(wall_time), max(wall_time) FROM {points} GROUP BY s",
            parameters,
        ).fetchall()
    }
    if not stats:
        raise NotFound(f"no scalar tag {tag!r} in run(s) {', '.join(run_ids)}")
    owners = {s: run_ids[s] for s in stats}
    configs = dict(
        cur.execute(f"SELECT run_id, config FROM {RUNS} WHERE run_id IN ({_marks(run_ids)})", run_ids).fetchall()
    )
    grouping = RunGroups.of(run_ids, owners, configs, key)
    extent = group_extent(stats, x_axis, x_min, x_max)
    if extent is None:
        return []
    lo, hi = extent
    if x_axis == "step":  # the columns of queries.scalar_groups: whole rollup buckets spread over `width`
        first, last = math.ceil(lo), math.floor(hi)
        level = level_for(last - first + 1, width)
        first_bucket, last_bucket = first >> level, last >> level
        buckets = last_bucket - first_bucket + 1
        per_run = f"""SELECT s AS key, ((step >> {level}) - {first_bucket}) * {width} // {buckets} AS col,
            avg(CASE WHEN isnan(value) THEN NULL ELSE value END) AS mean, (min(step) + max(step)) / 2.0 AS x
        FROM {points} WHERE step >> {level} BETWEEN {first_bucket} AND {last_bucket}
        GROUP BY key, col"""
    else:
        starts = {s: row[3] for s, row in stats.items()}
        per_run = time_columns_sql(
            f"(SELECT s AS key, {x_sql(x_axis, starts)} AS x, value FROM {points})", lo, hi, width
        )
    return grouping.answer(cur, per_run, parameters)


def _lake_progress(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> Progress:
    """run id -> (last step, last wall time) of its scalars in the lake (runs without any are left out)."""
    rows = cur.execute(
        f"SELECT run_id, max(step), max(wall_time) FROM {LAKE}.lake_scalars WHERE run_id IN ({_marks(run_ids)}) "
        "GROUP BY run_id",
        run_ids,
    ).fetchall()
    return {run_id: (int(step), float(wall)) for run_id, step, wall in rows}


def _later(local: tuple[Any, Any], lake: tuple[int, float] | None) -> tuple[Any, Any]:
    if lake is None:
        return local
    step, wall = local
    return (lake[0] if step is None else max(step, lake[0]), lake[1] if wall is None else max(wall, lake[1]))


def _known_runs(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> None:
    """Raise NotFound naming the runs neither this file nor the lake knows (the file first: no lake scan
    when it knows them all)."""
    if not run_ids:
        return
    missing = run_ids
    for table in ("run_meta", f"{LAKE}.lake_runs"):
        query = f"SELECT run_id FROM {table} WHERE run_id IN ({_marks(missing)})"
        found = {r for (r,) in cur.execute(query, missing).fetchall()}
        missing = [r for r in missing if r not in found]
        if not missing:
            return
    raise NotFound(f"unknown run id(s): {', '.join(missing)}")


def points_sql(runs: int) -> str:
    """The points of a tag (first parameter) of `runs` runs (the next ones) as (s, step, wall_time, value),
    s the run's 0-based position: the lake's and the unmoved outbox's. Parameters: (tag, *runs) twice."""
    marks = ", ".join("?" for _ in range(runs))
    position = f"list_position([{marks}], run_id) - 1"
    return f"""(
    SELECT {position} AS s, step, wall_time, value FROM {LAKE}.lake_scalars WHERE tag = ? AND run_id IN ({marks})
    UNION ALL
    SELECT {position} AS s, step, wall_time, value FROM {UNMOVED} WHERE tag = ? AND run_id IN ({marks})
)"""


def _points_params(run_ids: list[str], tag: str) -> list[Any]:
    return [*run_ids, tag, *run_ids] * 2


def x_sql(x_axis: str, starts: Mapping[int, float]) -> str:
    """The x of a point on `x_axis`: step, wall time, or wall time since the series' first point."""
    if x_axis == "step":
        return "CAST(step AS DOUBLE)"
    if x_axis == "wall":
        return "wall_time"
    whens = " ".join(f"WHEN {int(s)} THEN {sql_double(start)}" for s, start in starts.items())
    return f"wall_time - (CASE s {whens} END)"


def m4_sql(runs: int, x_axis: str, starts: Mapping[int, float], lo: float, hi: float, width: int) -> str:
    """One row per series and pixel column, the fields of downsample.m4_sql (store/downsample.py)."""
    span = hi - lo
    scale = width / span if span > 0 else 0.0
    px = f"least(CAST(floor((x - {sql_double(lo)}) * {sql_double(scale)}) AS BIGINT), {width - 1})"
    return f"""SELECT s, {px} AS px, count(*) AS n,
       min(x) AS x_first, arg_min(y, x) AS y_first, max(x) AS x_last, arg_max(y, x) AS y_last,
       arg_min(x, y_number) AS x_low, min(y_number) AS y_low, arg_max(x, y_number) AS x_high, max(y_number) AS y_high
FROM (SELECT s, {x_sql(x_axis, starts)} AS x, value AS y, CASE WHEN isnan(value) THEN NULL ELSE value END AS y_number
      FROM {points_sql(runs)})
WHERE x BETWEEN {sql_double(lo)} AND {sql_double(hi)}
GROUP BY ALL"""


def exact_sql(runs: int, x_axis: str, starts: Mapping[int, float], lo: float, hi: float) -> str:
    return f"""SELECT s, x, y FROM (SELECT s, {x_sql(x_axis, starts)} AS x, value AS y FROM {points_sql(runs)})
WHERE x BETWEEN {sql_double(lo)} AND {sql_double(hi)}"""


def _as_float(values: Any) -> np.ndarray:
    if isinstance(values, np.ma.MaskedArray):
        return np.ma.filled(values.astype(np.float64), np.nan)
    return np.asarray(values, dtype=np.float64)


def _scalar_series(
    cur: duckdb.DuckDBPyConnection,
    run_ids: list[str],
    tag: str,
    x_axis: str,
    x_min: float | None,
    x_max: float | None,
    width: int,
) -> list[tuple[str, Downsampled]]:
    """Unknown runs are refused as queries.scalar_series refuses them, but looked for only among the runs
    without a series in the answer (the lake's run list is not read for an overlay of runs that all have one)."""
    try:
        found = _series_of(cur, run_ids, tag, x_axis, x_min, x_max, width)
    except NotFound:
        _known_runs(cur, run_ids)  # an unknown run is said first, as one server's file says it
        raise
    answered = {run_id for run_id, _ in found}
    _known_runs(cur, [run_id for run_id in run_ids if run_id not in answered])
    return found


def _series_of(
    cur: duckdb.DuckDBPyConnection,
    run_ids: list[str],
    tag: str,
    x_axis: str,
    x_min: float | None,
    x_max: float | None,
    width: int,
) -> list[tuple[str, Downsampled]]:
    if x_axis == "step":  # from the rollup partials; the time axes below from the points
        return _step_series(cur, run_ids, tag, x_min, x_max, width)
    params = _points_params(run_ids, tag)
    stats = {
        int(row[0]): row[1:]
        for row in cur.execute(
            "SELECT s, count(*), min(step), max(step), min(wall_time), max(wall_time) "
            f"FROM {points_sql(len(run_ids))} GROUP BY s",
            params,
        ).fetchall()
    }
    if not stats:
        raise NotFound(f"no scalar tag {tag!r} in run(s) {', '.join(run_ids)}")
    starts = {s: float(row[3]) for s, row in stats.items()}
    bounds = {
        "wall": [(row[3], row[4]) for row in stats.values()],
        "relative": [(0.0, row[4] - row[3]) for row in stats.values()],
    }[x_axis]
    lo = float(x_min if x_min is not None else min(b[0] for b in bounds))
    hi = float(x_max if x_max is not None else max(b[1] for b in bounds))
    if lo > hi:
        return []
    rows = cur.execute(m4_sql(len(run_ids), x_axis, starts, lo, hi, width), params).fetchnumpy()
    owner = np.asarray(rows["s"])
    columns = {name: _as_float(values) for name, values in rows.items() if name != "s"}
    per_series = np.bincount(owner, weights=columns["n"], minlength=len(run_ids)) if owner.size else np.zeros(0)
    many = per_series > width
    chosen = many[owner] if owner.size else np.zeros(0, dtype=bool)
    found = assemble({"s": owner[chosen]} | {name: values[chosen] for name, values in columns.items()})
    few = [int(s) for s in np.unique(owner) if not many[s]]
    if few:
        few_runs = [run_ids[s] for s in few]
        few_rows = cur.execute(
            exact_sql(len(few_runs), x_axis, {few.index(s): start for s, start in starts.items() if s in few}, lo, hi),
            _points_params(few_runs, tag),
        ).fetchnumpy()
        owners = np.asarray(few_rows["s"])
        for i, s in enumerate(few):
            mine = owners == i
            found[s] = exact(s, _as_float(few_rows["x"])[mine], _as_float(few_rows["y"])[mine])
    return [(run_ids[s], found[s]) for s in sorted(found)]


STEPS = (-(2**63), 2**63 - 1)  # every step


def _step_series(
    cur: duckdb.DuckDBPyConnection, run_ids: list[str], tag: str, x_min: float | None, x_max: float | None, width: int
) -> list[tuple[str, Downsampled]]:
    """The step axis from rollup partials, as queries.scalar_series reads one server's file: the lake's
    partials (``lake_rollups``, put there with the points they summarise) combined with partials of the
    unmoved outbox points, so the read costs O(columns), not O(points). The range and point counts come from
    the coarsest level. A series with no more points than `width` is read exactly (so are lake points
    without partials, which only a lake written before ``lake_rollups`` holds: read exactly, slowly)."""
    unmoved = _unmoved(cur, run_ids, tag)
    totals, first, last = _extent(cur, run_ids, tag, unmoved)
    large = [s for s in range(len(run_ids)) if totals[s] > width]
    small = _exact_points(cur, run_ids, [s for s in range(len(run_ids)) if totals[s] <= width], tag, STEPS)
    bounds = [(int(x.min()), int(x.max())) for x, _ in small.values() if x.size]
    bounds += [(int(first[s]), int(last[s])) for s in large]
    if not bounds:
        raise NotFound(f"no scalar tag {tag!r} in run(s) {', '.join(run_ids)}")
    lo = math.ceil(x_min) if x_min is not None else min(b[0] for b in bounds)
    hi = math.floor(x_max) if x_max is not None else max(b[1] for b in bounds)
    if lo > hi:
        return []
    found, few = _step_columns(cur, run_ids, large, tag, unmoved, lo, hi, width)
    for s, (x, y) in (small | _exact_points(cur, run_ids, few, tag, (lo, hi))).items():
        shown = (x >= lo) & (x <= hi)
        if shown.any():
            found[s] = exact(s, x[shown].astype(np.float64), y[shown])
    # steps are integers: sent as such, as queries.scalar_series does
    found = {s: replace(d, x=d.x.astype(np.int64), band_x=d.band_x.astype(np.int64)) for s, d in found.items()}
    return [(run_ids[s], found[s]) for s in sorted(found)]


def _extent(
    cur: duckdb.DuckDBPyConnection, run_ids: list[str], tag: str, unmoved: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run (position in `run_ids`): its points, first and last step, from the coarsest level's partials
    (a row per move: few) and the unmoved points. Only the columns needed are read (the others' decoding
    was most of the query's time)."""
    rows = cur.execute(
        f"SELECT {_position(run_ids)} AS s, sum(points) AS points, min(first_step) AS first, "
        f"max(last_step) AS last FROM {LAKE}.lake_rollups "
        f"WHERE tag = ? AND run_id IN ({_marks(run_ids)}) AND level = {LEVEL_MAX} GROUP BY s",
        [*run_ids, tag, *run_ids],
    ).fetchnumpy()
    owner = np.concatenate([np.asarray(rows["s"], dtype=np.int64), unmoved["s"].astype(np.int64)])
    totals = np.bincount(
        owner, weights=np.concatenate([_as_float(rows["points"]), np.ones(unmoved["s"].size)]), minlength=len(run_ids)
    )
    first, last = np.full(len(run_ids), STEPS[1]), np.full(len(run_ids), STEPS[0])
    np.minimum.at(first, owner, np.concatenate([np.asarray(rows["first"], dtype=np.int64), unmoved["step"]]))
    np.maximum.at(last, owner, np.concatenate([np.asarray(rows["last"], dtype=np.int64), unmoved["step"]]))
    return totals, first, last


def _step_columns(
    cur: duckdb.DuckDBPyConnection,
    run_ids: list[str],
    large: list[int],
    tag: str,
    unmoved: dict[str, np.ndarray],
    lo: int,
    hi: int,
    width: int,
) -> tuple[dict[int, Downsampled], list[int]]:
    """queries._step_columns over the lake: M4 per column of whole buckets of level `level_for`, for the
    series (positions in `run_ids`) in `large`; and the series with at most `width` points in [lo, hi]."""
    if not large:
        return {}, []
    level = level_for(hi - lo + 1, width)
    first_bucket, last_bucket = lo >> level, hi >> level
    steps = (first_bucket << level, min(((last_bucket + 1) << level) - 1, STEPS[1]))  # whole buckets
    if level < LEVEL_MIN:  # fewer than 16 steps a column: no stored level, the points themselves
        partials = _of_points(_points_in(cur, run_ids, large, tag, steps), level)
    else:
        step = unmoved["step"]
        in_range = (step >= steps[0]) & (step <= steps[1]) & np.isin(unmoved["s"], large)
        partials = _stacked(
            [
                _lake_partials(cur, run_ids, [run_ids[s] for s in large], tag, level, (first_bucket, last_bucket)),
                _of_points({name: values[in_range] for name, values in unmoved.items()}, level),
            ]
        )
    return columns_downsampled(partials, first_bucket, last_bucket, width)


def _position(run_ids: list[str]) -> str:
    """A run's position in `run_ids` (given as parameters), as the series id of its partials."""
    return f"CAST(list_position([{_marks(run_ids)}], run_id) - 1 AS INTEGER)"


def _unmoved(cur: duckdb.DuckDBPyConnection, run_ids: list[str], tag: str) -> dict[str, np.ndarray]:
    """This server's unmoved points of `tag` as arrays s (position in `run_ids`), step, value; by s and step.
    The lake's batch keys are read only when the outbox holds points of the tag (in the read's local snapshot)."""
    outboxed = f"SELECT 1 FROM lake_outbox_scalars WHERE tag = ? AND run_id IN ({_marks(run_ids)})"
    if not cur.execute(f"SELECT EXISTS ({outboxed})", [tag, *run_ids]).fetchall()[0][0]:
        return _point_arrays({})
    rows = cur.execute(
        f"SELECT {_position(run_ids)} AS s, step, value FROM {UNMOVED} WHERE tag = ? AND run_id IN ({_marks(run_ids)}) "
        "ORDER BY s, step, rank",
        [*run_ids, tag, *run_ids],
    ).fetchnumpy()
    return _point_arrays(rows)


def _points_in(
    cur: duckdb.DuckDBPyConnection, run_ids: list[str], chosen: list[int], tag: str, steps: tuple[int, int]
) -> dict[str, np.ndarray]:
    """The points (lake and unmoved) of the runs at positions `chosen` with steps in `steps`, by s and step;
    s is the position in `run_ids`."""
    if not chosen:
        return _point_arrays({})
    runs = [run_ids[s] for s in chosen]
    rows = cur.execute(
        f"SELECT s, step, value FROM {points_sql(len(runs))} WHERE step BETWEEN ? AND ? ORDER BY s, step",
        [*_points_params(runs, tag), *steps],
    ).fetchnumpy()
    points = _point_arrays(rows)
    points["s"] = np.asarray(chosen, dtype=np.int32)[points["s"]] if points["s"].size else points["s"]
    return points


def _point_arrays(rows: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {
        "s": np.asarray(rows.get("s", []), dtype=np.int32),
        "step": np.asarray(rows.get("step", []), dtype=np.int64),
        "value": _as_float(rows.get("value", [])),
    }


def _exact_points(
    cur: duckdb.DuckDBPyConnection, run_ids: list[str], chosen: list[int], tag: str, steps: tuple[int, int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Every point (step, value) of the runs at positions `chosen` with steps in `steps`, per position."""
    points = _points_in(cur, run_ids, chosen, tag, steps)
    return {s: (points["step"][mine], points["value"][mine]) for s in chosen if (mine := points["s"] == s).any()}


def _of_points(points: dict[str, np.ndarray], level: int) -> Partials:
    """Partials at `level` of points sorted by (s, step)."""
    return from_points(points["s"], points["step"], points["value"], level)


def _lake_partials(
    cur: duckdb.DuckDBPyConnection,
    run_ids: list[str],
    runs: list[str],
    tag: str,
    level: int,
    buckets: tuple[int, int],
) -> Partials:
    """The lake's partials of `tag` of `runs` at `level`, buckets in `buckets`, as stored (several per bucket:
    one per move that had points there); series ids are positions in `run_ids`."""
    table = cur.execute(
        f"SELECT {_position(run_ids)} AS series_id, bucket, points, numbers, sum, first_step, first_value, last_step, "
        f"last_value, min_step, min_value, max_step, max_value FROM {LAKE}.lake_rollups "
        f"WHERE tag = ? AND run_id IN ({_marks(runs)}) AND level = ? AND bucket BETWEEN ? AND ?",
        [*run_ids, tag, *runs, level, *buckets],
    ).to_arrow_table()
    assert table is not None  # a SELECT always has a result

    def column(name: str, fill: Any = None) -> np.ndarray:
        values: pa.ChunkedArray = table.column(name)
        if fill is not None and values.null_count:
            values = pc.fill_null(values, fill)
        return np.asarray(values.to_numpy())

    return Partials(
        series_id=column("series_id").astype(np.int32),
        bucket=column("bucket").astype(np.int64),
        points=column("points").astype(np.int64),
        numbers=column("numbers").astype(np.int64),
        sum=column("sum").astype(np.float64),
        first_step=column("first_step").astype(np.int64),
        first_value=column("first_value", math.nan).astype(np.float64),
        last_step=column("last_step").astype(np.int64),
        last_value=column("last_value", math.nan).astype(np.float64),
        min_step=column("min_step", NO_STEP).astype(np.int64),
        min_value=column("min_value", math.nan).astype(np.float64),
        max_step=column("max_step", NO_STEP).astype(np.int64),
        max_value=column("max_value", math.nan).astype(np.float64),
    )


def _stacked(parts: list[Partials]) -> Partials:
    """Partials of several sources in one, not combined (several rows per bucket: what columns_of takes)."""
    return Partials(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in FIELDS})
