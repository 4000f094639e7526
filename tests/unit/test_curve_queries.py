"""store/curve_queries.py on a DuckDB of the real schema, rows written by hand (no server): PR curves by
step (each run's last step at or before the slider's), custom-scalar layouts and tag names by run."""

from __future__ import annotations

import json
import math

import duckdb
import pytest

from runstream_service.errors import NotFound
from runstream_service.store import curve_queries
from runstream_service.store.schema import create_schema


def curve(t: int, scale: float) -> list[list[float]]:
    """Six lists of t values: TP, FP, TN, FN, precision, recall (the last precision NaN: nothing predicted)."""
    tp = [scale * (t - i) for i in range(t)]
    fp = [float(t - i) for i in range(t)]
    precision = [a / (a + b) if a + b else math.nan for a, b in zip(tp, fp)]
    precision[-1] = math.nan
    return [tp, fp, [1.0] * t, [2.0] * t, precision, [i / t for i in range(t)][::-1]]


@pytest.fixture
def cur() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    create_schema(con)
    for run_id in ("a", "b", "c"):
        con.execute(
            "INSERT INTO run_meta VALUES (?, 'p', ?, '{}', 'running', 0, NULL, NULL, 1)", [run_id, f"run {run_id}"]
        )
    con.execute("INSERT INTO series VALUES (1, 'a', 'pr_curve', 'pr/x'), (2, 'b', 'pr_curve', 'pr/x')")
    rows = [(1, step, 0, 100.0 + step, 3, *curve(3, step + 1)) for step in (0, 10, 20)]
    rows += [(2, step, 0, 200.0 + step, 4, *curve(4, 1)) for step in (5, 15)]
    rows += [(1, 10, 1, 150.0, 3, *curve(3, 99))]  # rank 1 at a step rank 0 has: rank 0 is shown
    con.executemany("INSERT INTO pr_curve_points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


def test_each_run_shows_its_last_step_without_a_step(cur: duckdb.DuckDBPyConnection) -> None:
    found = curve_queries.pr_curves(cur, ["b", "a"], "pr/x", None)
    assert [(s["run_id"], s["step"], s["steps"]) for s in found] == [("b", 15, [5, 15]), ("a", 20, [0, 10, 20])]
    a = found[1]
    assert a["thresholds"] == [0.0, 0.5, 1.0]
    assert a["true_positives"] == [63.0, 42.0, 21.0]
    assert math.isnan(a["precision"][-1])
    assert a["wall_time"] == 120.0 and a["rank"] == 0


def test_a_step_picks_each_runs_last_step_at_or_before_it(cur: duckdb.DuckDBPyConnection) -> None:
    found = {s["run_id"]: s for s in curve_queries.pr_curves(cur, ["a", "b"], "pr/x", 12)}
    assert found["a"]["step"] == 10 and found["a"]["rank"] == 0 and found["a"]["true_positives"][0] == 33.0
    assert found["b"]["step"] == 5
    early = {s["run_id"]: s["step"] for s in curve_queries.pr_curves(cur, ["a", "b"], "pr/x", 2)}
    assert early == {"a": 0, "b": 5}  # b has nothing that early: its first curve


def test_unknown_runs_and_tags_are_not_found(cur: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(NotFound, match="unknown run id"):
        curve_queries.pr_curves(cur, ["zz"], "pr/x", None)
    with pytest.raises(NotFound, match="no PR curve tag 'nope'"):
        curve_queries.pr_curves(cur, ["a"], "nope", None)
    assert [s["run_id"] for s in curve_queries.pr_curves(cur, ["a", "c"], "pr/x", None)] == ["a"]


def test_layouts_and_tag_names_by_run(cur: duckdb.DuckDBPyConnection) -> None:
    layout = {"categories": [{"title": "T", "closed": False, "charts": [{"title": "c", "multiline": {"tags": ["x"]}}]}]}
    cur.execute("INSERT INTO custom_scalar_layouts VALUES ('b', ?, 1.0)", [json.dumps(layout)])
    assert curve_queries.custom_scalar_layouts(cur, ["a", "b"]) == [{"run_id": "b", "layout": layout}]
    assert curve_queries.custom_scalar_layouts(cur, ["a"]) == []
    cur.execute(
        "INSERT INTO tag_info VALUES ('a', 'loss', 'Loss', 'old', 1.0), ('b', 'loss', 'Training loss', 'newer', 2.0),"
        " ('a', 'acc', 'Accuracy', '', 1.0), ('c', 'other', 'Other', '', 3.0)"
    )
    assert curve_queries.tag_info(cur, ["a", "b"]) == {
        "loss": {"display_name": "Training loss", "description": "newer"},
        "acc": {"display_name": "Accuracy", "description": ""},
    }


def test_thresholds_and_step_choice() -> None:
    assert curve_queries.thresholds(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve_queries.pick_step([3, 7], None) == 7
    assert curve_queries.pick_step([3, 7], 7) == 7
    assert curve_queries.pick_step([3, 7], 6) == 3
    assert curve_queries.pick_step([3, 7], 1) == 3
