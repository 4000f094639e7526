"""M4 downsampling in DuckDB SQL. Pure: builds SQL text and turns its rows into chart arrays.

Per pixel column M4 keeps the first and last point and the points with the smallest and
largest value, so a line drawn through them looks exactly like a line through every point,
and no spike is hidden (TensorBoard instead keeps 1,000 random points per tag). When the
visible range holds no more points than pixels, every point is returned as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

X_AXES = ("step", "relative", "wall")


@dataclass(frozen=True)
class SeriesQuery:
    series_ids: tuple[int, ...]
    x_axis: str  # step | relative | wall
    x_min: float | None  # None: from the first point
    x_max: float | None  # None: to the last point
    width: int


def points_sql(series_ids: tuple[int, ...], x_axis: str) -> str:
    """The points of the series as (s, x, y), x per the chosen axis.

    One equality filter per series, not one IN list: DuckDB's zone maps can then skip the row
    groups that do not hold that series (the writer keeps each commit's rows grouped by series).
    """
    if x_axis == "step":
        x = "CAST(step AS DOUBLE)"
    elif x_axis == "wall":
        x = "wall_time"
    else:
        x = "wall_time - min(wall_time) OVER ()"
    return " UNION ALL ".join(
        f"(SELECT series_id AS s, {x} AS x, value AS y FROM scalar_points WHERE series_id = {int(i)})"
        for i in series_ids
    )


def counts_sql(query: SeriesQuery) -> str:
    """Per series: (s, points in range, min x, max x), over the requested x range or all of it."""
    where = ""
    if query.x_min is not None:
        where += f" AND x >= {float(query.x_min)!r}"
    if query.x_max is not None:
        where += f" AND x <= {float(query.x_max)!r}"
    points = points_sql(query.series_ids, query.x_axis)
    return f"SELECT s, count(*), min(x), max(x) FROM ({points}) WHERE TRUE{where} GROUP BY s"


def exact_sql(series_ids: tuple[int, ...], x_axis: str, x_min: float, x_max: float) -> str:
    """Every point of these series in [x_min, x_max], as rows (s, x, y)."""
    return f"SELECT s, x, y FROM ({points_sql(series_ids, x_axis)}) WHERE x >= {x_min!r} AND x <= {x_max!r}"


def m4_sql(series_ids: tuple[int, ...], x_axis: str, x_min: float, x_max: float, width: int) -> str:
    """One row per series and pixel column: (s, px, n, x_first, y_first, x_last, y_last, x_low, y_low,
    x_high, y_high). The smallest and largest value skip NaN (NULL when a column holds only NaN)."""
    span = x_max - x_min
    scale = width / span if span > 0 else 0.0
    return f"""
SELECT s, least(CAST(floor((x - {x_min!r}) * {scale!r}) AS BIGINT), {width - 1}) AS px, count(*) AS n,
       min(x) AS x_first, arg_min(y, x) AS y_first, max(x) AS x_last, arg_max(y, x) AS y_last,
       arg_min(x, y_number) AS x_low, min(y_number) AS y_low, arg_max(x, y_number) AS x_high, max(y_number) AS y_high
FROM (
    SELECT s, x, y, CASE WHEN isnan(y) THEN NULL ELSE y END AS y_number
    FROM ({exact_sql(series_ids, x_axis, x_min, x_max)})
)
GROUP BY ALL
"""


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


def assemble(series_id: int, columns: dict[str, np.ndarray]) -> Downsampled:
    """Chart arrays of one series from its rows of `m4_sql` (columns as float64 arrays, NULL as NaN)."""
    px = columns["px"]
    order = np.argsort(px, kind="stable")
    get = {name: np.asarray(values)[order] for name, values in columns.items()}
    xs = np.stack([get["x_first"], get["x_low"], get["x_high"], get["x_last"]], axis=1)
    ys = np.stack([get["y_first"], get["y_low"], get["y_high"], get["y_last"]], axis=1)
    keep = ~np.isnan(xs)  # x_low and x_high are NaN in a column of only NaN values
    flat_x, flat_y = xs[keep], ys[keep]
    # Within a column, points in x order; the same point chosen twice is drawn once.
    column = np.repeat(np.arange(len(xs)), keep.sum(axis=1))
    order = np.lexsort((flat_x, column))
    flat_x, flat_y, column = flat_x[order], flat_y[order], column[order]
    distinct = np.ones(flat_x.size, dtype=bool)
    distinct[1:] = (flat_x[1:] != flat_x[:-1]) | (column[1:] != column[:-1]) | (flat_y[1:] != flat_y[:-1])
    distinct[1:] |= np.isnan(flat_y[1:]) != np.isnan(flat_y[:-1])
    return Downsampled(
        series_id,
        False,
        int(get["n"].sum()),
        flat_x[distinct],
        flat_y[distinct],
        get["x_first"],
        get["y_low"],
        get["y_high"],
    )
