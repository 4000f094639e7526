"""M4 downsampling in DuckDB SQL. Pure: builds SQL text and turns its rows into chart arrays.

Per column M4 keeps the first and last point and the points with the smallest and largest
value, so a line drawn through them looks exactly like a line through every point, and no
spike is hidden (TensorBoard instead keeps 1,000 random points per tag). When the visible
range holds no more points than pixels, every point is returned as it is.

On the step axis each of the `width` columns is made of whole step buckets of a rollup level
(store/rollups.py: the coarsest level with at least one bucket per column, so every column's
M4 is exact, not estimated across a bucket that straddles two columns). The compacted points' partials
come from scalar_rollups, so the read costs O(columns) whatever the series' length; only the
hot (not yet compacted) points are aggregated here. On the wall-time axes the columns are
`width` equal slices of the range, aggregated from the points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runstream_service.store.rollups import LEVEL_MIN

X_AXES = ("step", "relative", "wall")
PARTIAL_COLUMNS = (
    "series_id, bucket, points, numbers, sum, first_step, first_value, last_step, last_value, "
    "min_step, min_value, max_step, max_value"
)


def raw_points(where: str, columns: str = "series_id, step, rank, wall_time, value") -> str:
    """Scalar points matching `where`, compacted and hot: each point exactly once in one snapshot."""
    return (
        f"(SELECT {columns} FROM scalar_points WHERE {where} "
        f"UNION ALL SELECT {columns} FROM scalar_points_hot WHERE {where})"
    )


def id_list(series_ids: tuple[int, ...]) -> str:
    return ", ".join(str(int(i)) for i in series_ids)


def bucket_partials_sql(series_ids: tuple[int, ...], level: int, first_bucket: int, last_bucket: int) -> str:
    """Partials (store/rollups.py) of these series per bucket of 2**level steps, buckets in range.

    From scalar_rollups for compacted points when the level is stored, plus the hot points
    aggregated here; several rows of one bucket are combined by the caller.
    """
    ids = id_list(series_ids)
    lo, hi = first_bucket << level, min(((last_bucket + 1) << level) - 1, 2**63 - 1)
    in_range = f"series_id IN ({ids}) AND step BETWEEN {lo} AND {hi}"
    source = "scalar_points_hot" if level >= LEVEL_MIN else raw_points(in_range, "series_id, step, value")
    from_points = f"""SELECT series_id, step >> {level} AS bucket, count(*) AS points, count(number) AS numbers,
       coalesce(sum(number), 0) AS sum, min(step) AS first_step, arg_min(value, step) AS first_value,
       max(step) AS last_step, arg_max(value, step) AS last_value, arg_min(step, low) AS min_step,
       min(number) AS min_value, arg_max(step, high) AS max_step, max(number) AS max_value
FROM (SELECT series_id, step, value, number,
             -- ties of the smallest or largest number go to the earliest step (as in rollups.combine)
             CASE WHEN number IS NULL THEN NULL ELSE {{'v': number, 's': step}} END AS low,
             CASE WHEN number IS NULL THEN NULL ELSE {{'v': number, 's': -step}} END AS high
      FROM (SELECT series_id, step, value, CASE WHEN isnan(value) THEN NULL ELSE value END AS number
            FROM {source} WHERE {in_range}))
GROUP BY series_id, bucket"""
    if level < LEVEL_MIN:
        return from_points
    return f"""SELECT {PARTIAL_COLUMNS} FROM scalar_rollups
WHERE level = {level} AND series_id IN ({ids}) AND bucket BETWEEN {first_bucket} AND {last_bucket}
UNION ALL
{from_points}"""


def sql_double(value: float) -> str:
    """`value` as an exact SQL DOUBLE literal. A bare literal such as 0.9179887596012393 is a DECIMAL, which
    DuckDB 1.5.5 (a lake server's) turns into a double one unit off now and then (27 of 2,000 random values):
    the last point of a range compared with it fell out of the range. 2.x converts them exactly."""
    return f"CAST('{float(value)!r}' AS DOUBLE)"


def points_sql(series_ids: tuple[int, ...], x_axis: str, starts: dict[int, float] | None = None) -> str:
    """The points of the series as (s, x, y), x per the chosen axis.

    One equality filter per series, not one IN list: DuckDB's zone maps can then skip the row
    groups that do not hold that series (the compactor keeps each series' points together).
    For the relative axis, `starts` gives each series' first wall time (else it is computed).
    """

    def x_of(series_id: int) -> str:
        if x_axis == "step":
            return "CAST(step AS DOUBLE)"
        if x_axis == "wall":
            return "wall_time"
        if starts is not None and series_id in starts:
            return f"wall_time - {sql_double(starts[series_id])}"
        return "wall_time - min(wall_time) OVER ()"

    return " UNION ALL ".join(
        f"(SELECT series_id AS s, {x_of(i)} AS x, value AS y FROM {raw_points(f'series_id = {int(i)}')})"
        for i in series_ids
    )


def exact_sql(
    series_ids: tuple[int, ...], x_axis: str, x_min: float, x_max: float, starts: dict[int, float] | None = None
) -> str:
    """Every point of these series in [x_min, x_max], as rows (s, x, y)."""
    points = points_sql(series_ids, x_axis, starts)
    return f"SELECT s, x, y FROM ({points}) WHERE x >= {sql_double(x_min)} AND x <= {sql_double(x_max)}"


def m4_sql(
    series_ids: tuple[int, ...],
    x_axis: str,
    x_min: float,
    x_max: float,
    width: int,
    starts: dict[int, float] | None = None,
) -> str:
    """One row per series and pixel column: (s, px, n, x_first, y_first, x_last, y_last, x_low, y_low,
    x_high, y_high). The smallest and largest value skip NaN (NULL when a column holds only NaN).

    Each series is aggregated on its own (a small group-by over pixel columns that DuckDB runs as
    a perfect hash), then the results are stacked.
    """
    span = x_max - x_min
    scale = width / span if span > 0 else 0.0
    px = f"least(CAST(floor((x - {sql_double(x_min)}) * {sql_double(scale)}) AS BIGINT), {width - 1})"
    per_series = [
        f"""(SELECT s, {px} AS px, count(*) AS n,
       min(x) AS x_first, arg_min(y, x) AS y_first, max(x) AS x_last, arg_max(y, x) AS y_last,
       arg_min(x, y_number) AS x_low, min(y_number) AS y_low, arg_max(x, y_number) AS x_high, max(y_number) AS y_high
FROM (
    SELECT s, x, y, CASE WHEN isnan(y) THEN NULL ELSE y END AS y_number
    FROM ({exact_sql((series_id,), x_axis, x_min, x_max, starts)})
)
GROUP BY ALL)"""
        for series_id in series_ids
    ]
    return "\nUNION ALL\n".join(per_series)


@dataclass(frozen=True)
class Downsampled:
    series_id: int
    exact: bool
    count: int  # points in the visible range
    x: np.ndarray
    y: np.ndarray
    band_x: np.ndarray  # per pixel column: the column's first x
    band_min: np.ndarray
    band_max: np.ndarray


def exact(series_id: int, x: np.ndarray, y: np.ndarray) -> Downsampled:
    """Every point, in x order."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    return Downsampled(series_id, True, int(x.size), x, y, x, y, y)


def assemble(columns: dict[str, np.ndarray]) -> dict[int, Downsampled]:
    """Chart arrays per series from M4 rows of any number of series, all at once.

    `columns` are float64 arrays (NULL as NaN) of the row fields of `m4_sql`, with "s" the
    series id (an integer array). Rows may come in any order.
    """
    s, px = np.asarray(columns["s"]), np.asarray(columns["px"])
    in_order = bool(np.all((s[1:] > s[:-1]) | ((s[1:] == s[:-1]) & (px[1:] > px[:-1]))))
    get = columns if in_order else {name: np.asarray(v)[np.lexsort((px, s))] for name, v in columns.items()}
    owners, first_rows = np.unique(get["s"], return_index=True)
    if owners.size == 0:
        return {}
    # A column's points in x order: the first, the smallest and largest value in the order of
    # their steps, the last. Columns are disjoint x ranges in order, so all points are in order.
    low_first = ~(get["x_high"] < get["x_low"])
    xs, ys = np.empty((s.size, 4)), np.empty((s.size, 4))
    for array, name in ((xs, "x"), (ys, "y")):
        low, high = get[f"{name}_low"], get[f"{name}_high"]
        array[:, 0], array[:, 3] = get[f"{name}_first"], get[f"{name}_last"]
        array[:, 1], array[:, 2] = np.where(low_first, low, high), np.where(low_first, high, low)
    keep = ~np.isnan(xs)  # x_low and x_high are NaN in a column of only NaN values
    flat_x, flat_y = xs[keep], ys[keep]
    # The same point chosen twice in a column is drawn once (the same x is never in two columns).
    same_y = (flat_y[1:] == flat_y[:-1]) | (np.isnan(flat_y[1:]) & np.isnan(flat_y[:-1]))
    distinct = np.ones(flat_x.size, dtype=bool)
    distinct[1:] = (flat_x[1:] != flat_x[:-1]) | ~same_y
    keep[keep] = distinct
    # Rows are grouped by series, and so are the points.
    point_bounds = np.concatenate(([0], np.cumsum(keep.sum(axis=1))))[np.append(first_rows, s.size)]
    row_bounds = np.append(first_rows, s.size)
    flat_x, flat_y = flat_x[distinct], flat_y[distinct]
    counts = np.add.reduceat(get["n"], first_rows)
    found = {}
    for i, series_id in enumerate(owners.tolist()):
        rows, points = slice(row_bounds[i], row_bounds[i + 1]), slice(point_bounds[i], point_bounds[i + 1])
        found[int(series_id)] = Downsampled(
            int(series_id),
            False,
            int(counts[i]),
            flat_x[points],
            flat_y[points],
            get["x_first"][rows],
            get["y_low"][rows],
            get["y_high"][rows],
        )
    return found
