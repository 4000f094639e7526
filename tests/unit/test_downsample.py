"""M4 in DuckDB against a NumPy reference, on random and adversarial series."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from runstream_service.store.queries import scalar_series
from runstream_service.store.schema import create_schema


def _store(series: dict[int, tuple[np.ndarray, np.ndarray]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_schema(con)
    con.execute("INSERT INTO run_meta VALUES ('r', 'p', 'r', '{}', 'running', 0, NULL, 'h', 1)")
    for sid, (steps, values) in series.items():
        con.execute("INSERT INTO series VALUES (?, 'r', 'scalar', ?)", [sid, f"t{sid}"])
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
        con.execute("INSERT INTO scalar_points SELECT * FROM rows")
        con.unregister("rows")
        # What the writer keeps for every series it writes.
        con.execute(
            "INSERT INTO series_stats SELECT series_id, count(*), min(step), max(step), min(wall_time), "
            "max(wall_time) FROM scalar_points WHERE series_id = ? GROUP BY series_id",
            [sid],
        )
    return con


def _downsample(con: duckdb.DuckDBPyConnection, sid: int, lo: float, hi: float, width: int) -> tuple[np.ndarray, ...]:
    ((_, result),) = scalar_series(con.cursor(), ["r"], f"t{sid}", "step", lo, hi, width)
    return result.x, result.y, result.band_min, result.band_max, np.array([result.exact])


def _reference_columns(
    steps: np.ndarray, values: np.ndarray, lo: float, hi: float, width: int
) -> dict[int, np.ndarray]:
    inside = (steps >= lo) & (steps <= hi)
    x, y = steps[inside].astype(np.float64), values[inside]
    scale = width / (hi - lo) if hi > lo else 0.0
    px = np.minimum(np.floor((x - lo) * scale).astype(np.int64), width - 1)
    return {int(p): np.flatnonzero(px == p) for p in np.unique(px)} | {-1: np.array([x.size])}, x, y  # type: ignore[return-value]


def _check(steps: np.ndarray, values: np.ndarray, lo: float, hi: float, width: int) -> None:
    con = _store({7: (steps, values)})
    got_x, got_y, band_min, band_max, (exact,) = _downsample(con, 7, lo, hi, width)
    columns, x, y = _reference_columns(steps, values, lo, hi, width)  # type: ignore[misc]
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
    assert len(got_x) <= 4 * width
    for p, idx in columns.items():
        if p == -1:
            continue
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
