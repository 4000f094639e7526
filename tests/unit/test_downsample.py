"""M4 in DuckDB against a NumPy reference, on random and adversarial series.

Every series is checked in three layouts: all points hot (aggregated from the points), all
compacted (read from the rollup tiers), and split over two compacted generations plus hot
points (partials combined). The three must give identical results.
"""

from __future__ import annotations

from unittest.mock import patch

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from runstream_service.settings import CompactionPolicy
from runstream_service.store import compactor as compactor_module
from runstream_service.store.compactor import Compactor
from runstream_service.store.queries import TooLarge, scalar_points, scalar_series
from runstream_service.store.rollups import level_for
from runstream_service.store.schema import create_schema

LAYOUTS = ("hot", "compacted", "split")


def _insert_hot(con: duckdb.DuckDBPyConnection, sid: int, steps: np.ndarray, values: np.ndarray) -> None:
    rows = pa.table(
        {
            "series_id": np.full(len(steps), sid, np.int32),
            "step": steps.astype(np.int64),
            "rank": np.zeros(len(steps), np.int32),
            "wall_time": 1.7e9 + steps.astype(np.float64),
            "value": values.astype(np.float64),
        }
    )
    con.register("rows", rows)
    con.execute("INSERT INTO scalar_points_hot SELECT * FROM rows")
    con.unregister("rows")


def _compact(con: duckdb.DuckDBPyConnection) -> None:
    compactor = Compactor(con, CompactionPolicy(hot_points=1))
    compactor._step()  # what its thread does when points are due


def _store(series: dict[int, tuple[np.ndarray, np.ndarray]], layout: str = "hot") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_schema(con)
    con.execute("INSERT INTO run_meta VALUES ('r', 'p', 'r', '{}', 'running', 0, NULL, 'h', 1)")
    for sid, (steps, _) in series.items():
        con.execute("INSERT INTO series VALUES (?, 'r', 'scalar', ?)", [sid, f"t{sid}"])
        # What the writer keeps for every series it writes.
        con.execute(
            "INSERT INTO series_stats VALUES (?, ?, ?, ?, ?, ?)",
            [sid, len(steps), int(steps.min()), int(steps.max()), 1.7e9 + steps.min(), 1.7e9 + steps.max()],
        )
    if layout == "hot":
        for sid, (steps, values) in series.items():
            _insert_hot(con, sid, steps, values)
    elif layout == "compacted":
        for sid, (steps, values) in series.items():
            _insert_hot(con, sid, steps, values)
        _compact(con)
    else:  # thirds in arrival order: two compacted generations, then hot points
        for part in range(3):
            for sid, (steps, values) in series.items():
                third = slice(part * len(steps) // 3, (part + 1) * len(steps) // 3)
                _insert_hot(con, sid, steps[third], values[third])
            if part < 2:
                _compact(con)
    return con


def _downsample(
    con: duckdb.DuckDBPyConnection, sid: int, lo: float, hi: float, width: int, axis: str = "step"
) -> tuple[np.ndarray, ...]:
    ((_, result),) = scalar_series(con.cursor(), ["r"], f"t{sid}", axis, lo, hi, width)
    return result.x, result.y, result.band_x, result.band_min, result.band_max, np.array([result.exact])


def _reference_columns(
    steps: np.ndarray, values: np.ndarray, lo: float, hi: float, width: int
) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """The step axis' columns: `width` columns of whole buckets of 2**level steps, with at least
    `width` buckets over the range widened to whole buckets."""
    first, last = int(np.ceil(lo)), int(np.floor(hi))
    level = level_for(last - first + 1, width)
    bucket = steps.astype(np.int64) >> level
    inside = (bucket >= first >> level) & (bucket <= last >> level)
    buckets = (last >> level) - (first >> level) + 1
    if last - first + 1 > width:  # at least one bucket per column, at most about two
        assert width <= buckets <= 2 * width + 1
    column = ((bucket - (first >> level)) * width) // buckets
    x, y, px = steps[inside].astype(np.float64), values[inside], column[inside]
    if x.size <= width:  # few points: exactly those in [lo, hi]
        inside = (steps >= lo) & (steps <= hi)
        x, y, px = steps[inside].astype(np.float64), values[inside], column[inside]
    return {int(p): np.flatnonzero(px == p) for p in np.unique(px)}, x, y


def _check(steps: np.ndarray, values: np.ndarray, lo: float, hi: float, width: int) -> None:
    results = {layout: _downsample(_store({7: (steps, values)}, layout), 7, lo, hi, width) for layout in LAYOUTS}
    if np.unique(steps).size == steps.size:  # with several points at one step, "first" may be any of them
        for layout in LAYOUTS[1:]:
            for got, want in zip(results[layout], results["hot"]):
                assert np.array_equal(got, want, equal_nan=True), layout
    for result in results.values():
        _check_against_reference(steps, values, lo, hi, width, result)


def _check_against_reference(
    steps: np.ndarray, values: np.ndarray, lo: float, hi: float, width: int, result: tuple[np.ndarray, ...]
) -> None:
    got_x, got_y, _, band_min, band_max, (exact,) = result
    columns, x, y = _reference_columns(steps, values, lo, hi, width)
    # NaN stands for itself here: compare through a stand-in that is equal to itself.
    got_y_key = np.where(np.isnan(got_y), -7.7e307, got_y)
    got: dict[float, set[float]] = {}
    for gx, gy in zip(got_x.tolist(), got_y_key.tolist()):
        got.setdefault(gx, set()).add(gy)
    if x.size <= width:
        assert exact
        assert sorted(zip(got_x.tolist(), got_y_key.tolist())) == sorted(
            zip(x.tolist(), np.where(np.isnan(y), -7.7e307, y).tolist())
        )
        return
    assert not exact
    assert len(band_min) == len(columns) and len(got_x) <= 4 * len(columns)  # the same columns, M4 in each
    for p, idx in columns.items():
        cx, cy = x[idx], y[idx]
        # The first and last point of the column are returned.
        assert cx.min() in got and cx.max() in got
        finite = ~np.isnan(cy)
        if finite.any():
            # The column's smallest and largest value are returned, at an x where they occur.
            for extreme in (cy[finite].min(), cy[finite].max()):
                assert any(extreme in got.get(ex, ()) for ex in cx[cy == extreme].tolist()), (p, extreme)
    finite_y = y[~np.isnan(y)]
    assert np.nanmin(band_min) == finite_y.min() and np.nanmax(band_max) == finite_y.max()


@pytest.mark.parametrize("seed", range(8))
def test_random_series(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 20_000))
    steps = np.sort(rng.choice(10 * n, size=n, replace=False))
    values = np.cumsum(rng.standard_normal(n))
    width = int(rng.integers(1, 800))
    lo = float(rng.integers(0, max(1, steps[-1] // 2)))
    _check(steps, values, lo, float(steps[-1]), width)


def test_a_single_spike_is_never_hidden() -> None:
    steps = np.arange(1_000_000)
    values = np.zeros(steps.size)
    values[777_777] = 1e6
    values[123_457] = -5e5
    _check(steps, values, 0.0, float(steps[-1]), 1000)


def test_the_whole_range_by_default_and_every_axis() -> None:
    con = _store({3: (np.arange(5000), np.arange(5000.0))})
    cur = con.cursor()
    for axis in ("step", "relative", "wall"):
        ((_, full),) = scalar_series(cur, ["r"], "t3", axis, None, None, 100)
        assert not full.exact and full.count == 5000 and full.y.min() == 0.0 and full.y.max() == 4999.0
        offset = {"step": 0.0, "relative": 0.0, "wall": 1.7e9}[axis]
        assert full.x.min() == offset and full.x.max() == offset + 4999.0


def test_nan_and_inf() -> None:
    steps = np.arange(10_000)
    values = np.sin(steps / 100.0)
    values[::97] = np.nan
    values[5000] = np.inf
    values[7000] = -np.inf
    values[2000:2100] = np.nan  # a whole column of NaN
    _check(steps, values, 0.0, 9999.0, 300)


def test_duplicate_steps_and_gaps() -> None:
    steps = np.concatenate([np.repeat(np.arange(0, 500), 3), np.arange(10_000, 10_500)])
    values = np.random.default_rng(1).standard_normal(steps.size)
    _check(steps, values, 0.0, 10_499.0, 100)


def test_exact_points_when_fewer_than_pixels() -> None:
    steps = np.arange(0, 5000, 7)
    values = np.cos(steps.astype(float))
    _check(steps, values, 0.0, 4999.0, 1000)
    _check(steps, values, 100.0, 900.0, 1000)  # zoomed in: still exact


def test_a_single_point_and_a_zero_width_range() -> None:
    _check(np.array([5]), np.array([1.0]), 5.0, 5.0, 10)
    steps = np.full(50, 5)
    _check(steps, np.arange(50.0), 5.0, 5.0, 10)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_full_read_every_point_in_step_order_and_bounded(layout: str) -> None:
    rng = np.random.default_rng(3)
    steps = np.sort(rng.choice(100_000, 30_000, replace=False))
    values = rng.standard_normal(steps.size)
    con = _store({7: (steps, values)}, layout)
    got = scalar_points(con.cursor(), "r", "t7", None, None, limit=30_000)
    assert np.array_equal(got["step"], steps) and np.array_equal(got["value"], values)
    got = scalar_points(con.cursor(), "r", "t7", 500.5, 2000.0, limit=30_000)
    assert np.array_equal(got["step"], steps[(steps > 500) & (steps <= 2000)])
    with pytest.raises(TooLarge, match="30,000 points, more than 29,999"):
        scalar_points(con.cursor(), "r", "t7", None, None, limit=29_999)


@pytest.mark.parametrize("coarse_rows", [1, 40, 10**9])
def test_rollups_are_the_same_however_a_rewrite_is_chunked(coarse_rows: int) -> None:
    rng = np.random.default_rng(5)
    series = {sid: (np.arange(int(rng.integers(1, 5000))), rng.standard_normal(5000)) for sid in range(1, 7)}
    series = {sid: (steps, values[: steps.size]) for sid, (steps, values) in series.items()}
    columns = "series_id, level, bucket, points, numbers, sum, first_step, first_value, last_step, last_value"
    whole = _store(series, "compacted").execute(f"SELECT {columns} FROM scalar_rollups ORDER BY ALL").fetchall()
    with (
        patch.object(compactor_module, "CHUNK_POINTS", 1),  # every series a chunk of its own
        patch.object(compactor_module, "COARSE_ROWS", coarse_rows),
    ):
        con = _store(series, "compacted")
    assert con.execute(f"SELECT {columns} FROM scalar_rollups ORDER BY ALL").fetchall() == whole
    # A compaction commits each step with all its levels; merges gather the coarse levels
    # (tests/unit/test_compactor_steps.py).
