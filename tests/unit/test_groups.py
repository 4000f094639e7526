"""Group-by across runs in DuckDB: labels as the web UI writes them, means and bands, NaN as gaps."""

from __future__ import annotations

import json
import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from runstream_service.settings import CompactionPolicy
from runstream_service.store.compactor import Compactor
from runstream_service.store.queries import group_label, js_number, scalar_groups
from runstream_service.store.schema import create_schema


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (1e-5, "0.00001"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (3.0, "3"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (-2.5e-10, "-2.5e-10"),
        (math.inf, "Infinity"),
    ],
)
def test_numbers_are_labelled_as_javascript_prints_them(value: float, label: str) -> None:
    assert js_number(value) == label


def test_labels_of_other_values() -> None:
    assert group_label({}, "lr") == "(none)" and group_label({"lr": None}, "lr") == "(none)"
    assert group_label({"opt": "adam"}, "opt") == "adam" and group_label({"b": True}, "b") == "true"
    assert group_label({"n": 12}, "n") == "12" and group_label({"a": ["é", 1]}, "a") == '["é",1]'


STEPS = 4000


def _store(compacted: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_schema(con)
    for i, lr in enumerate((0.1, 0.1, 0.1, 0.01)):
        run = f"r{i}"
        con.execute(
            "INSERT INTO run_meta VALUES (?, 'p', ?, ?, 'finished', 0, 1, 'h', 1)", [run, run, json.dumps({"lr": lr})]
        )
        con.execute("INSERT INTO series VALUES (?, ?, 'scalar', 'loss')", [i, run])
        steps = np.arange(STEPS)
        values = np.sin(steps / 300.0) + 2.0 * i
        values[1000:1500] = np.nan  # every run: a stretch of only NaN
        con.execute("INSERT INTO series_stats VALUES (?, ?, 0, ?, 0, ?)", [i, STEPS, STEPS - 1, float(STEPS - 1)])
        rows = pa.table(
            {
                "series_id": np.full(STEPS, i, np.int32),
                "step": steps,
                "rank": np.zeros(STEPS, np.int32),
                "wall_time": steps.astype(np.float64),
                "value": values,
            }
        )
        con.register("rows", rows)
        con.execute("INSERT INTO scalar_points_hot SELECT * FROM rows")
        con.unregister("rows")
    if compacted:
        Compactor(con, CompactionPolicy(hot_points=1))._step()
    return con


@pytest.mark.parametrize("compacted", [False, True])
@pytest.mark.parametrize("axis", ["step", "wall", "relative"])
def test_means_bands_and_gaps(compacted: bool, axis: str) -> None:
    con = _store(compacted)
    groups = scalar_groups(con.cursor(), ["r0", "r1", "r2", "r3"], "loss", "lr", axis, None, None, 100)
    assert [(g["label"], g["runs"]) for g in groups] == [("0.1", ["r0", "r1", "r2"]), ("0.01", ["r3"])]
    first = groups[0]
    x, count = first["x"], first["count"]
    assert np.all(np.diff(x) > 0) and 100 <= x.size <= 201
    gap = (x > 1040) & (x < 1460)  # columns wholly inside the NaN stretch
    inside = (x < 960) | (x > 1540)
    # Where no run has a number: a gap (NaN), and nobody counted.
    assert gap.any() and np.isnan(first["mean"][gap]).all() and (count[gap] == 0).all()
    # Elsewhere: the runs are 2 apart, so the band is 4 wide and the std that of (0, 2, 4).
    mids = inside & (count == 3)
    assert mids.sum() > 50
    assert np.allclose(first["max"][mids] - first["min"][mids], 4.0)
    assert np.allclose(first["std"][mids], np.std([0.0, 2.0, 4.0]))
    assert np.allclose(first["mean"][mids] - first["min"][mids], 2.0)
    assert (groups[1]["count"][~np.isnan(groups[1]["mean"])] == 1).all()
