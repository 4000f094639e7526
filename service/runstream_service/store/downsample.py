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


def points_sql(series_ids: tuple[int, ...], x_axis: str, starts: dict[int, float] | None = None) -> str:
    """The points of the series as (s, x, y), x per the chosen axis.

    One equality filter per series, not one IN list: DuckDB's zone maps can then skip the row
    groups that do not hold that series (the writer keeps each commit's rows grouped by series).
    For the relative axis, `starts` gives each series' first wall time (else it is computed).
    """

    def x_of(series_id: int) -> str:
        if x_axis == "step":
            return "CAST(step AS DOUBLE)"
        if x_axis == "wall":
            return "wall_time"
        if starts is not None and series_id in starts:
            return f"wall_time - {float(starts[series_id])!r}"
        return "wall_time - min(wall_time) OVER ()"

    return " UNION ALL ".join(
        f"(SELECT series_id AS s, {x_of(i)} AS x, value AS y FROM scalar_points WHERE series_id = {int(i)})"
        for i in series_ids
    )


def exact_sql(
    series_ids: tuple[int, ...], x_axis: str, x_min: float, x_max: float, starts: dict[int, float] | None = None
) -> str:
    """Every point of these series in [x_min, x_max], as rows (s, x, y)."""
    points = points_sql(series_ids, x_axis, starts)
    return f"SELECT s, x, y FROM ({points}) WHERE x >= {x_min!r} AND x <= {x_max!r}"


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
    px = f"least(CAST(floor((x - {x_min!r}) * {scale!r}) AS BIGINT), {width - 1})"
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
