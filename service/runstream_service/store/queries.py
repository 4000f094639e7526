"""The read side of the store: what the dashboard asks, answered on a cursor. No HTTP here.

Functions take a DuckDB cursor and plain arguments, and return plain data; they raise
NotFound for unknown runs or tags.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Re-exported: what the reads raise belongs to the service's one error tree (HTTP 404 / 400).
from runstream_service.errors import NotFound as NotFound
from runstream_service.errors import TooLarge as TooLarge
from runstream_service.store import series_points
from runstream_service.store.downsample import (
    Downsampled,
    assemble,
    bucket_partials_sql,
    exact,
    exact_sql,
    id_list,
    m4_sql,
    raw_points,
    sql_double,
)
from runstream_service.store.kinds import BY_NAME, HISTOGRAM, IMAGE, KINDS, TEXT
from runstream_service.store.rollups import NO_STEP, Partials, columns_of, level_for

# DuckDB suggests the relation API for Arrow output; for rows with list columns (histograms) a
# DB-API result was measured twice as fast (10 vs 20 ms for 10,000 histograms of 64 buckets).
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)

PERCENTILES = (0.0, 6.68, 15.87, 30.85, 50.0, 69.15, 84.13, 93.32, 100.0)  # TensorBoard's distribution bands


def list_projects(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = cur.execute("SELECT project, count(*) FROM run_meta GROUP BY project ORDER BY project").fetchall()
    return [{"project": p, "runs": n} for p, n in rows]


def list_runs(
    cur: duckdb.DuckDBPyConnection, project: str | None, text: str | None, config: dict[str, str]
) -> list[dict[str, Any]]:
    where, params = ["TRUE"], []
    if project:
        where.append("r.project = ?")
        params.append(project)
    if text:
        where.append("(r.name ILIKE ? OR r.run_id ILIKE ?)")
        params += [f"%{text}%", f"%{text}%"]
    for key, value in config.items():
        where.append("json_extract_string(r.config, ?) = ?")
        params += [f"$.{json.dumps(key)}", value]
    rows = cur.execute(
        f"""
        SELECT r.run_id, r.project, r.name, r.status, r.created_at, r.finished_at, r.host, r.world_size,
               r.config::VARCHAR, s.last_step, s.last_time,
               coalesce(l.tags, CAST([] AS VARCHAR[])), coalesce(l.note, ''), coalesce(l.archived, false)
        FROM run_meta r
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
    names = ("run_id", "project", "name", "status", "created_at", "finished_at", "host", "world_size")
    runs = []
    for row in rows:
        run = dict(zip(names, row[:8]))
        run["config"] = json.loads(row[8]) if row[8] else {}
        run["last_step"], run["last_time"] = row[9], row[10]
        run["tags"], run["note"], run["archived"] = list(row[11]), row[12], row[13]
        runs.append(run)
    return runs


def known_runs(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> None:
    """Raise NotFound naming the run ids that do not exist."""
    found = {
        r for (r,) in cur.execute("SELECT run_id FROM run_meta WHERE list_contains(?, run_id)", [run_ids]).fetchall()
    }
    missing = [r for r in run_ids if r not in found]
    if missing:
        raise NotFound(f"unknown run id(s): {', '.join(missing)}")


def list_tags(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, list[str]]:
    known_runs(cur, run_ids)
    rows = cur.execute(
        "SELECT DISTINCT kind, tag FROM series WHERE list_contains(?, run_id) ORDER BY tag", [run_ids]
    ).fetchall()
    tags: dict[str, list[str]] = {kind.view: [] for kind in KINDS}
    for kind, tag in rows:
        tags[BY_NAME[kind].view].append(tag)
    return tags


def _series_ids(cur: duckdb.DuckDBPyConnection, run_ids: list[str], kind: str, tag: str) -> dict[int, str]:
    known_runs(cur, run_ids)
    rows = cur.execute(
        "SELECT series_id, run_id FROM series WHERE kind = ? AND tag = ? AND list_contains(?, run_id)",
        [kind, tag, run_ids],
    ).fetchall()
    if not rows:
        raise NotFound(f"no {kind} tag {tag!r} in run(s) {', '.join(run_ids)}")
    return dict(rows)


def _as_float(values: Any) -> np.ndarray:
    if isinstance(values, np.ma.MaskedArray):
        return np.ma.filled(values.astype(np.float64), np.nan)
    return np.asarray(values, dtype=np.float64)


def _scalar_stats(cur: duckdb.DuckDBPyConnection, owners: dict[int, str]) -> dict[int, tuple[Any, ...]]:
    """series id -> (points, first_step, last_step, first_wall, last_wall), from the writer's summary."""
    return {
        row[0]: row[1:]
        for row in cur.execute(
            "SELECT series_id, points, first_step, last_step, first_wall, last_wall FROM series_stats "
            "WHERE list_contains(?, series_id)",
            [list(owners)],
        ).fetchall()
    }


def scalar_series(
    cur: duckdb.DuckDBPyConnection,
    run_ids: list[str],
    tag: str,
    x_axis: str,
    x_min: float | None,
    x_max: float | None,
    width: int,
) -> list[tuple[str, Downsampled]]:
    """M4-downsampled series of `tag` for each run that has it, in the order of `run_ids`.

    The x range and point counts come from series_stats, the writer's summary. On the step
    axis the columns are rollup buckets (see downsample.py); a series with no more points in
    range than `width` is then read again, exactly (cheap: few points).
    """
    owners = _series_ids(cur, run_ids, "scalar", tag)
    stats = _scalar_stats(cur, owners)
    ids = tuple(s for s in owners if s in stats)
    if not ids:
        return []
    starts = {s: stats[s][3] for s in ids}
    bounds = {
        "step": [(stats[s][1], stats[s][2]) for s in ids],
        "wall": [(stats[s][3], stats[s][4]) for s in ids],
        "relative": [(0.0, stats[s][4] - stats[s][3]) for s in ids],
    }[x_axis]
    lo = float(x_min if x_min is not None else min(b[0] for b in bounds))
    hi = float(x_max if x_max is not None else max(b[1] for b in bounds))
    if lo > hi:
        return []
    if x_axis == "step":
        found, few = _step_columns(cur, ids, math.ceil(lo), math.floor(hi), width)
    else:
        found, few = _wall_columns(cur, ids, x_axis, lo, hi, width, starts)
    if few:
        exact_rows = cur.execute(exact_sql(tuple(few), x_axis, lo, hi, starts)).fetchnumpy()
        for series_id in few:
            mine = np.asarray(exact_rows["s"]) == series_id
            found[series_id] = exact(series_id, _as_float(exact_rows["x"])[mine], _as_float(exact_rows["y"])[mine])
    if x_axis == "step":  # steps are integers: sent as such (and JSON of integers is shorter and faster)
        found = {s: _integer_x(d) for s, d in found.items()}
    order = {run: i for i, run in enumerate(run_ids)}
    return [(owners[s], found[s]) for s in sorted(found, key=lambda s: order[owners[s]])]


def _integer_x(downsampled: Downsampled) -> Downsampled:
    return replace(downsampled, x=downsampled.x.astype(np.int64), band_x=downsampled.band_x.astype(np.int64))


def _step_columns(
    cur: duckdb.DuckDBPyConnection, ids: tuple[int, ...], lo: int, hi: int, width: int
) -> tuple[dict[int, Downsampled], list[int]]:
    """M4 per column: `width` columns over [lo, hi], each of whole rollup buckets of the coarsest
    level with at least `width` buckets there (rollups.columns_of).

    Returns the downsampled series, and the series with at most `width` points (to read exactly).
    """
    if lo > hi:
        return {}, []
    level = level_for(hi - lo + 1, width)
    first_bucket, last_bucket = lo >> level, hi >> level
    buckets = step_partials(cur, ids, level, first_bucket, last_bucket)  # as stored: not yet combined
    return columns_downsampled(buckets, first_bucket, last_bucket, width)


def columns_downsampled(
    buckets: Partials, first_bucket: int, last_bucket: int, width: int
) -> tuple[dict[int, Downsampled], list[int]]:
    """Partials of buckets (several per bucket allowed) as `width` M4 columns per series (rollups.columns_of):
    the downsampled series, and the series with at most `width` points (to read exactly)."""
    partials = columns_of(buckets, first_bucket, last_bucket - first_bucket + 1, width)
    chosen, few = _downsampled_or_few(partials.series_id, partials.points, width)
    no_low, no_high = partials.min_step == NO_STEP, partials.max_step == NO_STEP
    found = assemble(
        {
            "s": partials.series_id[chosen],
            "px": partials.bucket[chosen].astype(np.float64),
            "n": partials.points[chosen].astype(np.float64),
            "x_first": partials.first_step[chosen].astype(np.float64),
            "y_first": partials.first_value[chosen],
            "x_last": partials.last_step[chosen].astype(np.float64),
            "y_last": partials.last_value[chosen],
            "x_low": np.where(no_low, np.nan, partials.min_step)[chosen],
            "y_low": partials.min_value[chosen],
            "x_high": np.where(no_high, np.nan, partials.max_step)[chosen],
            "y_high": partials.max_value[chosen],
        }
    )
    return found, few


def _downsampled_or_few(owner: np.ndarray, points: np.ndarray, width: int) -> tuple[np.ndarray, list[int]]:
    """Rows of M4 columns (series ids in `owner`, points per row): which rows belong to series with
    more than `width` points (downsampled), and the other series (read again, exactly)."""
    ids, inverse = np.unique(owner, return_inverse=True)
    many = np.bincount(inverse, weights=points, minlength=ids.size) > width
    return many[inverse], [int(i) for i in ids[~many]]


def step_partials(
    cur: duckdb.DuckDBPyConnection, ids: tuple[int, ...], level: int, first_bucket: int, last_bucket: int
) -> Partials:
    """Partials per series and bucket of 2**level steps, in any order, several per bucket when it
    spans generations and hot points (rollups.combine combines them)."""
    table = cur.sql(bucket_partials_sql(ids, level, first_bucket, last_bucket)).to_arrow_table()

    def column(name: str, fill: Any = None) -> np.ndarray:
        values = table.column(name)
        if fill is not None and values.null_count:
            values = pc.fill_null(values, fill)
        array: np.ndarray = values.to_numpy()
        return array

    return Partials(
        series_id=column("series_id").astype(np.int32),
        bucket=column("bucket"),
        points=column("points"),
        numbers=column("numbers"),
        sum=column("sum").astype(np.float64),
        first_step=column("first_step"),
        first_value=column("first_value", math.nan),
        last_step=column("last_step"),
        last_value=column("last_value", math.nan),
        min_step=column("min_step", NO_STEP),
        min_value=column("min_value", math.nan),
        max_step=column("max_step", NO_STEP),
        max_value=column("max_value", math.nan),
    )


def _wall_columns(
    cur: duckdb.DuckDBPyConnection,
    ids: tuple[int, ...],
    x_axis: str,
    lo: float,
    hi: float,
    width: int,
    starts: dict[int, float],
) -> tuple[dict[int, Downsampled], list[int]]:
    """M4 per pixel column over [lo, hi] of wall time (or time since the series' start), from the points."""
    rows = cur.execute(m4_sql(ids, x_axis, lo, hi, width, starts)).fetchnumpy()
    owner = np.asarray(rows["s"])
    columns = {name: _as_float(values) for name, values in rows.items() if name != "s"}
    chosen, few = _downsampled_or_few(owner, columns["n"], width)
    found = assemble({"s": owner[chosen]} | {name: values[chosen] for name, values in columns.items()})
    return found, few


def scalar_points(
    cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, x_min: float | None, x_max: float | None, limit: int
) -> dict[str, np.ndarray]:
    """Every point of one scalar series (steps in [x_min, x_max] when given), by step and rank.

    Raises TooLarge when there are more than `limit` of them (counted first, from the rollups).
    """
    (series_id,) = _series_ids(cur, [run_id], "scalar", tag)
    where = f"series_id = {int(series_id)}"
    if x_min is not None:
        where += f" AND step >= {math.ceil(x_min)}"
    if x_max is not None:
        where += f" AND step <= {math.floor(x_max)}"
    stats = _scalar_stats(cur, {series_id: run_id})
    if series_id in stats and stats[series_id][0] > limit:
        (count,) = cur.execute(f"SELECT count(*) FROM {raw_points(where, 'step')}").fetchall()[0]
        if count > limit:
            raise TooLarge(f"{count:,} points, more than {limit:,}: read a step range at a time (x_min, x_max)")
    table = cur.sql(f"SELECT step, rank, wall_time, value FROM {raw_points(where, 'step, rank, wall_time, value')}")
    columns = {name: np.asarray(values) for name, values in table.fetchnumpy().items()}
    # Compacted points come sorted, hot ones after them: sort only when needed.
    step, rank = columns["step"], columns["rank"]
    if step.size > 1 and not bool(((step[1:] > step[:-1]) | ((step[1:] == step[:-1]) & (rank[1:] >= rank[:-1]))).all()):
        order = np.lexsort((rank, step))
        columns = {name: values[order] for name, values in columns.items()}
    return columns


def group_label(config: dict[str, Any], key: str) -> str:
    """How a run's config value names its group, as JavaScript's String() would: "(none)" when absent."""
    value = config.get(key)
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def js_number(value: float) -> str:
    """A float as JavaScript prints it: 0.00001, 1e-7, 3, 1e+21."""
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    shortest = repr(value)
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(shortest), "f")
    mantissa, exponent = shortest.split("e")
    return f"{mantissa}e{int(exponent):+d}"


def scalar_groups(
    cur: duckdb.DuckDBPyConnection,
    run_ids: list[str],
    tag: str,
    key: str,
    x_axis: str,
    x_min: float | None,
    x_max: float | None,
    width: int,
) -> list[dict[str, Any]]:
    """Runs grouped by config value `key`: per column, mean, std, min and max across the runs' means.

    Each run's value in a column is the mean of its numbers there. On the step axis the columns
    are rollup buckets and the sums come from the tiers; on the time axes, `width` equal slices.
    All aggregation happens in DuckDB.
    """
    owners = _series_ids(cur, run_ids, "scalar", tag)
    configs = dict(
        cur.execute(
            "SELECT run_id, config::VARCHAR FROM run_meta WHERE list_contains(?, run_id)", [list(owners.values())]
        ).fetchall()
    )
    grouping = RunGroups.of(run_ids, owners, configs, key)
    stats = {s: row for s, row in _scalar_stats(cur, owners).items() if s in grouping.group_of}
    extent = group_extent(stats, x_axis, x_min, x_max)
    if extent is None:
        return []
    lo, hi = extent
    ids = tuple(stats)
    if x_axis == "step":
        first, last = math.ceil(lo), math.floor(hi)
        level = level_for(last - first + 1, width)
        # A column where a run has only NaN gives that run no value there (a gap when no run has one).
        first_bucket, last_bucket = first >> level, last >> level
        buckets = last_bucket - first_bucket + 1
        # Buckets spread over `width` columns as in /api/scalars (rollups.columns_of).
        per_run = f"""SELECT series_id AS key, ((bucket - {first_bucket}) * {width}) // {buckets} AS col,
            CASE WHEN sum(numbers) > 0 THEN sum(sum) / sum(numbers) END AS mean,
            (min(first_step) + max(last_step)) / 2.0 AS x
        FROM ({bucket_partials_sql(ids, level, first_bucket, last_bucket)})
        GROUP BY series_id, col"""
    else:
        starts = {s: stats[s][3] for s in ids}
        x = "wall_time" if x_axis == "wall" else "wall_time - " + _case("series_id", starts)
        points = f"(SELECT series_id AS key, {x} AS x, value FROM {raw_points(f'series_id IN ({id_list(ids)})')})"
        per_run = time_columns_sql(points, lo, hi, width)
    return grouping.answer(cur, per_run)


@dataclass(frozen=True)
class RunGroups:
    """Runs grouped by a config value: `group_of` maps each series' key (a series id, or a lake read's run
    position) to its group's number; `labels` name the groups in order, `members` list their runs."""

    labels: dict[str, int]
    members: dict[int, list[str]]
    group_of: dict[int, int]

    @staticmethod
    def of(run_ids: list[str], owners: dict[int, str], configs: dict[str, str | None], key: str) -> RunGroups:
        """`owners`: series key -> run; `configs`: run -> its config as JSON. Pure."""
        labels: dict[str, int] = {}
        members: dict[int, list[str]] = {}
        group_of: dict[int, int] = {}
        for run_id in run_ids:
            for series in [s for s, r in owners.items() if r == run_id]:
                label = group_label(json.loads(configs.get(run_id) or "{}"), key)
                group = labels.setdefault(label, len(labels))
                members.setdefault(group, []).append(run_id)
                group_of[series] = group
        return RunGroups(labels, members, group_of)

    def answer(
        self, cur: duckdb.DuckDBPyConnection, per_run: str, parameters: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        """The groups' columns from `per_run` (SQL: one row per series key and column, with its mean and x;
        `parameters` its placeholders' values)."""
        query = f"""
            SELECT {_case("key", self.group_of)} AS grp, col, avg(x) AS x, avg(mean) AS mean,
                stddev_pop(mean) AS std, min(mean) AS min, max(mean) AS max, count(mean) AS count
            FROM ({per_run}) GROUP BY grp, col ORDER BY grp, col
        """
        rows = cur.execute(query, list(parameters)).fetchnumpy()
        group_column = np.asarray(rows["grp"])
        groups = []
        for label, group in self.labels.items():
            mine = group_column == group
            groups.append(
                {
                    "label": label,
                    "runs": self.members[group],
                    **{name: _as_float(rows[name])[mine] for name in ("x", "mean", "std", "min", "max")},
                    "count": np.asarray(rows["count"])[mine],
                }
            )
        return groups


def group_extent(
    stats: dict[int, tuple[Any, ...]], x_axis: str, x_min: float | None, x_max: float | None
) -> tuple[float, float] | None:
    """The x range the groups span: the asked bounds, else the series' (stats: key -> (points, first_step,
    last_step, first_wall, last_wall)); None when there is nothing to draw. Pure."""
    if not stats:
        return None
    column = {"step": (1, 2), "wall": (3, 4)}.get(x_axis)
    lo = x_min if x_min is not None else (min(row[column[0]] for row in stats.values()) if column else 0.0)
    hi = (
        x_max
        if x_max is not None
        else (max(row[column[1]] for row in stats.values()) if column else max(r[4] - r[3] for r in stats.values()))
    )
    return None if lo > hi else (lo, hi)


def time_columns_sql(points: str, lo: float, hi: float, width: int) -> str:
    """Each series' mean per column of `width` equal slices of [lo, hi] on a time axis; `points` is SQL with
    (key, x, value)."""
    span = hi - lo
    scale = width / span if span > 0 else 0.0
    col = f"least(CAST(floor((x - {sql_double(lo)}) * {sql_double(scale)}) AS BIGINT), {width - 1})"
    return f"""SELECT key, {col} AS col, avg(CASE WHEN isnan(value) THEN NULL ELSE value END) AS mean, avg(x) AS x
        FROM {points} WHERE x BETWEEN {sql_double(lo)} AND {sql_double(hi)}
        GROUP BY key, col"""


LAST_VALUES = """
WITH last AS (
    SELECT se.series_id, se.run_id, se.tag, st.last_step
    FROM series se JOIN series_stats st USING (series_id)
    WHERE se.kind = 'scalar' AND list_contains(?, se.run_id)
)
SELECT l.run_id, l.tag, l.last_step, arg_min(p.value, {'rank': p.rank, 'wall': -p.wall_time}) AS value
FROM last l JOIN (
    SELECT series_id, step, rank, wall_time, value FROM scalar_points
    UNION ALL
    SELECT series_id, step, rank, wall_time, value FROM scalar_points_hot
) p ON p.series_id = l.series_id AND p.step = l.last_step
GROUP BY l.run_id, l.tag, l.last_step
"""


def last_values(cur: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[tuple[str, str, int, float | None]]:
    """Each scalar series' value at its greatest step, for these runs: (run_id, tag, step, value); of several
    points at that step, the lowest rank's, then the latest written."""
    rows: list[tuple[str, str, int, float | None]] = cur.execute(LAST_VALUES, [run_ids]).fetchall()
    return rows


def _case(column: str, mapping: dict[int, Any]) -> str:
    """A SQL CASE mapping small integer keys to numbers."""
    whens = " ".join(
        f"WHEN {int(k)} THEN {sql_double(v)}" if isinstance(v, float) else f"WHEN {int(k)} THEN {int(v)}"
        for k, v in mapping.items()
    )
    return f"(CASE {column} {whens} END)"


def histograms(
    cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, limit: int, buckets: bool = True
) -> dict[str, Any]:
    """About `limit` histograms of a tag evenly over its steps (always the last), and their percentiles.

    The bucket columns come out of DuckDB as flat Arrow arrays; percentiles are computed on them
    for all histograms at once. With `buckets` False the histograms' bucket arrays are left out
    (the distributions view needs only the percentiles).
    """
    points = series_points.series(cur, HISTOGRAM, run_id, tag)
    columns = "step, rank, wall_time, count, min, max, bucket_limits, bucket_counts"
    (total,) = cur.execute(f"SELECT count(*) FROM {points.sql}", points.params).fetchall()[0]
    if total <= limit:
        query = f"SELECT {columns} FROM {points.sql}"
    else:  # every k-th and the last, chosen on the keys alone (the bucket lists are only read for those)
        query = f"""
        WITH keys AS (SELECT step, rank, row_number() OVER (ORDER BY step, rank) - 1 AS i, count(*) OVER () AS n
                      FROM {points.sql}),
             chosen AS (SELECT DISTINCT step, rank FROM keys
                        WHERE i % CAST(ceil(n / {int(limit)}) AS BIGINT) = 0 OR i = n - 1)
        SELECT {columns} FROM {points.sql} SEMI JOIN chosen USING (step, rank)"""
    # Sorted here, not in SQL: DuckDB sorting rows with list columns costs more than the read.
    table = _in_step_order(cur.execute(query, points.params).to_arrow_table())
    edges, counts = table.column("bucket_limits").combine_chunks(), table.column("bucket_counts").combine_chunks()
    edge_values, edge_offsets = edges.values.to_numpy(), edges.offsets.to_numpy()
    count_values, count_offsets = counts.values.to_numpy(), counts.offsets.to_numpy()
    values = percentiles(edge_values, edge_offsets, count_values, count_offsets, PERCENTILES)
    items = [
        {"step": step, "wall_time": wall_time, "count": count, "min": low, "max": high}
        for step, wall_time, count, low, high in zip(
            *(table.column(name).to_pylist() for name in ("step", "wall_time", "count", "min", "max"))
        )
    ]
    if buckets:  # NumPy views of the flat arrays, one pair per histogram (orjson writes them as lists)
        for i, item in enumerate(items):
            item["bucket_limits"] = edge_values[edge_offsets[i] : edge_offsets[i + 1]]
            item["bucket_counts"] = count_values[count_offsets[i] : count_offsets[i + 1]]
    return {
        "run_id": run_id,
        "tag": tag,
        "histograms": items,
        "percentiles": {"q": list(PERCENTILES), "steps": table.column("step").to_numpy(), "values": values},
    }


def _in_step_order(table: pa.Table) -> pa.Table:
    """`table` sorted by (step, rank); as it is when it already is (the usual case)."""
    step, rank = table.column("step").to_numpy(), table.column("rank").to_numpy()
    if bool(np.all((step[1:] > step[:-1]) | ((step[1:] == step[:-1]) & (rank[1:] >= rank[:-1])))):
        return table
    return table.take(np.lexsort((rank, step)))


def percentiles(
    edges: np.ndarray, edge_offsets: np.ndarray, counts: np.ndarray, count_offsets: np.ndarray, qs: tuple[float, ...]
) -> np.ndarray:
    """Percentiles of each histogram, interpolating linearly inside a bucket: shape (histograms, len(qs)).

    Histogram i has bucket counts counts[count_offsets[i]:count_offsets[i + 1]] and one more edge
    in `edges` (flat arrays, as Arrow list columns hold them). Vectorised over all histograms at
    once: the running count over every bucket of every histogram is monotone, so one
    searchsorted finds every histogram's bucket for every percentile.
    """
    histograms = len(count_offsets) - 1
    if histograms <= 0:
        return np.zeros((0, len(qs)))
    counts = np.asarray(counts, dtype=np.float64)[count_offsets[0] : count_offsets[-1]]
    edges = np.asarray(edges, dtype=np.float64)
    starts = np.asarray(count_offsets[:-1] - count_offsets[0])
    ends = starts + np.diff(count_offsets) - 1
    running = np.cumsum(counts)
    before = running[starts] - counts[starts]  # everything in earlier histograms
    totals = running[ends] - before
    # Bucket b (an index into `counts`) of histogram i spans edges[b + edge_shift[i]] .. the next edge.
    edge_shift = np.asarray(edge_offsets[:-1]) - starts
    # All percentiles of all histograms at once, as (histograms, percentiles) arrays.
    q = np.asarray(qs, dtype=np.float64) / 100.0
    wanted = totals[:, None] * q  # how many values lie below the percentile, in its histogram
    found = np.searchsorted(running, (before[:, None] + wanted).ravel()).reshape(wanted.shape)
    # q = 0 wants the first non-empty bucket: the first whose running count passes `before`.
    found[:, q == 0] = np.searchsorted(running, before, side="right")[:, None]
    bucket = np.minimum(np.maximum(found, starts[:, None]), ends[:, None])  # (np.clip is slower here)
    inside = counts[bucket]
    # Within the bucket, counted from the histogram's own start (not the running total of all
    # histograms before it, whose rounding would swamp a small histogram after large ones).
    below = running[bucket] - inside - before[:, None]
    share = np.divide(wanted - below, inside, out=np.zeros_like(wanted), where=inside > 0)
    left = edges[bucket + edge_shift[:, None]]
    right = edges[bucket + edge_shift[:, None] + 1]
    result: np.ndarray = left + np.minimum(np.maximum(share, 0.0), 1.0) * (right - left)
    result[totals == 0] = math.nan
    return result


def list_texts(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, limit: int) -> list[dict[str, Any]]:
    """The last `limit` texts of a tag, in step order."""
    points = series_points.series(cur, TEXT, run_id, tag)
    rows = cur.execute(
        f"SELECT step, rank, wall_time, text FROM (SELECT * FROM {points.sql} "
        "ORDER BY step DESC, rank LIMIT $limit) ORDER BY step, rank",
        {**points.params, "limit": limit},
    ).fetchall()
    return [{"step": s, "rank": r, "wall_time": w, "text": t} for s, r, w, t in rows]


def list_images(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str) -> list[dict[str, Any]]:
    """The images of a tag, with their boxes (add_image_with_boxes: {"boxes", "labels"} in pixels) or None."""
    points = series_points.series(cur, IMAGE, run_id, tag)
    rows = cur.execute(
        f"SELECT step, rank, width, height, mime, boxes FROM {points.sql} ORDER BY step, rank", points.params
    ).fetchall()
    return [
        dict(zip(("step", "rank", "width", "height", "mime"), row[:5]))
        | {"boxes": json.loads(row[5]) if row[5] else None}
        for row in rows
    ]


@dataclass(frozen=True)
class ImageBytes:
    mime: str
    data: bytes


def image_bytes(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int, rank: int) -> ImageBytes:
    points = series_points.series(cur, IMAGE, run_id, tag)
    rows = cur.execute(
        f"SELECT mime, data FROM {points.sql} WHERE step = $step AND rank = $rank ORDER BY wall_time DESC LIMIT 1",
        {**points.params, "step": step, "rank": rank},
    ).fetchall()
    if not rows:
        raise NotFound(f"no image {tag!r} at step {step}, rank {rank} in run {run_id}")
    return ImageBytes(rows[0][0], bytes(rows[0][1]))
