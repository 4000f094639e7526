"""The HPARAMS read: configs flattened into columns (pure), and the last value by step read with SQL
from a real DuckDB schema filled by hand (compacted and hot points, several ranks at the last step)."""

from __future__ import annotations

import json
import math

import duckdb
import pytest

from runstream_dashboards.hparams_api import column_type, config_columns, flatten, read_hparams
from runstream_service.errors import NotFound
from runstream_service.store import queries
from runstream_service.store.schema import create_schema


def test_flatten_recurses_into_objects_and_keeps_lists_as_json() -> None:
    config = {"optimizer": {"name": "adam", "betas": [0.9, 0.99], "lr": {"base": 0.1}}, "seed": 3, "none": None}
    assert flatten(config) == {
        "optimizer.name": "adam",
        "optimizer.betas": "[0.9,0.99]",
        "optimizer.lr.base": 0.1,
        "seed": 3,
    }


def test_column_types() -> None:
    assert column_type([1, 2.5, None]) == "number"
    assert column_type([True, None, False]) == "bool"
    assert column_type([1, "a"]) == "string"
    assert column_type([True, 1]) == "string"
    assert column_type([None, None]) == "number"  # nothing to say otherwise: sorts and filters as numbers


def test_config_columns_put_hparams_first_with_their_domains() -> None:
    configs = [
        {"batch": 32, "hparams": {"lr": 0.1, "opt": "sgd"}, "hparam_domain_discrete": {"opt": ["sgd", "adam"]}},
        {"hparams": {"lr": 0.01, "opt": "adam", "bn": True}, "batch": "64"},
        {"other": {"depth": 3}},
    ]
    columns = {c["key"]: c for c in config_columns(configs)}
    assert list(columns) == ["hparams.lr", "hparams.opt", "hparams.bn", "batch", "other.depth"]
    assert columns["hparams.lr"] == {
        "key": "hparams.lr",
        "group": "hparam",
        "type": "number",
        "values": [0.1, 0.01, None],
    }
    assert columns["hparams.opt"]["domain"] == ["sgd", "adam"]
    assert columns["hparams.bn"]["type"] == "bool"
    assert columns["batch"] == {"key": "batch", "group": "config", "type": "string", "values": ["32", "64", None]}


@pytest.fixture
def cur() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    create_schema(con)
    runs = [
        ("r1", "p", "one", {"hparams": {"lr": 0.1}}, 1.0),
        ("r2", "p", "two", {"hparams": {"lr": 0.2}, "opt": {"name": "adam"}}, 2.0),
        ("r3", "q", "three", {}, 3.0),
    ]
    for run_id, project, name, config, created in runs:
        con.execute(
            "INSERT INTO run_meta VALUES (?, ?, ?, ?, 'finished', ?, NULL, NULL, 1)",
            [run_id, project, name, json.dumps(config), created],
        )
    # series: 1 = r1 loss (compacted, last step 9 with two ranks), 2 = r1 acc (hot), 3 = r2 loss (NaN last),
    # 4 = r1 a text series (not a metric)
    con.executemany(
        "INSERT INTO series VALUES (?, ?, ?, ?)",
        [(1, "r1", "scalar", "loss"), (2, "r1", "scalar", "acc"), (3, "r2", "scalar", "loss"), (4, "r1", "text", "t")],
    )
    con.executemany(
        "INSERT INTO scalar_points VALUES (?, ?, ?, ?, ?, 1)",
        [(1, 0, 0, 1.0, 5.0), (1, 9, 1, 2.0, 7.0), (1, 9, 0, 3.0, 6.0), (1, 5, 0, 4.0, 1.0)],
    )
    con.executemany(
        "INSERT INTO scalar_points_hot VALUES (?, ?, ?, ?, ?)",
        [(2, 3, 0, 1.0, 0.5), (2, 4, 0, 2.0, 0.75), (1, 9, 0, 5.0, 4.0), (3, 2, 0, 1.0, math.nan)],
    )
    con.executemany("INSERT INTO series_stats VALUES (?, ?, ?, ?, 0, 0)", [(1, 5, 0, 9), (2, 2, 3, 4), (3, 1, 2, 2)])
    return con


def test_read_hparams_takes_each_series_last_value_by_step(cur: duckdb.DuckDBPyConnection) -> None:
    found = read_hparams(cur, queries, "p", None, {}, None)
    assert found["runs"]["run_id"] == ["r2", "r1"]  # newest first
    assert found["truncated"] is False
    columns = {c["key"]: c for c in found["columns"]}
    assert [c["key"] for c in found["columns"]] == ["hparams.lr", "opt.name", "acc", "loss"]
    assert columns["hparams.lr"]["values"] == [0.2, 0.1]
    assert columns["opt.name"]["values"] == ["adam", None]
    assert columns["acc"]["values"] == [None, 0.75] and columns["acc"]["steps"] == [None, 4]
    # step 9 of r1: rank 0 before rank 1, and of rank 0's two points the one written last
    assert columns["loss"]["steps"] == [2, 9]
    assert columns["loss"]["values"][1] == 4.0
    assert math.isnan(columns["loss"]["values"][0])


def test_read_hparams_by_run_ids_and_by_filters(cur: duckdb.DuckDBPyConnection) -> None:
    assert read_hparams(cur, queries, None, None, {}, ["r3"])["runs"]["name"] == ["three"]
    assert read_hparams(cur, queries, "p", "two", {}, None)["runs"]["run_id"] == ["r2"]
    assert read_hparams(cur, queries, "p", None, {"opt": "sgd"}, None)["runs"]["run_id"] == []
    with pytest.raises(NotFound, match="nope"):
        read_hparams(cur, queries, None, None, {}, ["nope"])
