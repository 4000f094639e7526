"""The time-series layout against a real server: compaction while ingesting, rollups, full reads,
server-side group-by, and upgrading a version 1 database."""

from __future__ import annotations

import json
import math
import statistics
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

import runstream
from runstream_service.store.schema import SCHEMA_VERSION
from support import ServerProcess

RUNS = 4
STEPS = 40_000
OFFSETS = (0.0, 1.0, 10.0, 30.0)  # run i logs base(step) + OFFSETS[i]
LRS = (0.1, 0.01, 0.1, 0.01)


def base(step: np.ndarray) -> np.ndarray:
    return np.sin(np.asarray(step) / 500.0)


def get(server: ServerProcess, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}{path}", timeout=30) as reply:
            body = reply.read()
            return reply.status, json.loads(body) if "json" in reply.headers.get("Content-Type", "") else body
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def sql(server: ServerProcess, query: str) -> list[tuple[Any, ...]]:
    """Read-only SQL through the running server's HTTP API."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/api/sql",
        data=json.dumps({"sql": query, "limit": 100_000}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        return [tuple(row) for row in json.load(reply)["rows"]]


def settle(server: ServerProcess, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until every point is compacted and no merge is running."""
    deadline = time.monotonic() + timeout
    while True:
        _, health = get(server, "/healthz")
        if health["uncompacted_points"] == 0 and not health["compacting"]:
            return health
        assert time.monotonic() < deadline, health
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, list[str]]]:
    # Small thresholds: compactions and merges happen while the runs are still logging.
    server = ServerProcess(
        Path(tmp_path_factory.mktemp("timeseries")) / "data", ("--compact-points", "5000", "--compact-seconds", "0.2")
    ).start()
    runs = [
        runstream.init(project="ts", name=f"run{i}", config={"lr": LRS[i], "seed": i}, server=server.address)
        for i in range(RUNS)
    ]
    values = [base(np.arange(STEPS)) + offset for offset in OFFSETS]
    for i in range(RUNS):
        values[i][1234 + i] = 1e6 * (i + 1)  # one spike per run
        values[i][777] = math.nan
    for start in range(0, STEPS, 5000):  # interleaved across runs, as training jobs log
        for block in range(start, start + 5000, 500):
            for run, series in zip(runs, values, strict=True):
                for step in range(block, block + 500):
                    run.log({"loss": float(series[step]), "other": 1.0}, step=step)
        # Eight equal compactions, so generations of one size class merge (four at a time).
        for run in runs:
            run.flush()
        settle(server)
    for run in runs:
        assert run.finish(timeout=60).complete
    yield server, [run.id for run in runs]
    server.stop()


def test_every_point_once_after_compactions_and_merges(served: tuple[ServerProcess, list[str]]) -> None:
    server, _ = served
    health = settle(server)
    assert health["compactions"] >= 8 and health["merges"] >= 2, health
    total = RUNS * STEPS * 2
    assert sql(server, "SELECT count(*) FROM scalars")[0][0] == total
    assert sql(server, "SELECT count(*) FROM scalar_points_hot")[0][0] == 0
    duplicates = "SELECT count(*) FROM (SELECT run_id, tag, step, rank FROM scalars GROUP BY ALL HAVING count(*) > 1)"
    assert sql(server, duplicates)[0][0] == 0
    # The generations account for every compacted point, and each level of rollups for every point.
    assert sql(server, "SELECT sum(points) FROM scalar_generations")[0][0] == total
    per_level = sql(server, "SELECT level, sum(points) FROM scalar_rollups GROUP BY level ORDER BY level")
    assert [lv for lv, _ in per_level] == list(range(4, 31)) and {n for _, n in per_level} == {total}
    # A generation is sorted by series and step.
    unsorted = sql(
        server,
        "SELECT count(*) FROM (SELECT generation, series_id, step, lag(series_id) OVER w AS ps, "
        "lag(step) OVER w AS pst FROM scalar_points WINDOW w AS (PARTITION BY generation ORDER BY rowid)) "
        "WHERE ps > series_id OR (ps = series_id AND pst > step)",
    )
    assert unsorted[0][0] == 0


def test_overlay_keeps_every_spike_and_matches_the_points(served: tuple[ServerProcess, list[str]]) -> None:
    server, ids = served
    settle(server)
    status, body = get(server, f"/api/scalars?runs={','.join(ids)}&tag=loss&x=step&width=300")
    assert status == 200 and [s["run_id"] for s in body["series"]] == ids
    for i, series in enumerate(body["series"]):
        assert not series["exact"] and series["count"] == STEPS
        y = np.array([np.nan if v is None else v for v in series["y"]])
        assert np.nanmax(y) == 1e6 * (i + 1) and series["x"][int(np.nanargmax(y))] == 1234 + i
        assert np.nanmin(y) == pytest.approx(-1.0 + OFFSETS[i], abs=1e-4)
        # Every point drawn is a real point of the run.
        _, points = get(server, f"/api/points?run={ids[i]}&tag=loss")
        real = dict(zip(points["step"], points["value"]))
        assert all(real[int(x)] == v for x, v in zip(series["x"], series["y"]) if v is not None)


def test_full_read_returns_every_point_in_order(served: tuple[ServerProcess, list[str]]) -> None:
    server, ids = served
    status, body = get(server, f"/api/points?run={ids[2]}&tag=loss")
    assert status == 200 and body["count"] == STEPS and body["step"] == list(range(STEPS))
    want = base(np.arange(STEPS)) + OFFSETS[2]
    want[1236], want[777] = 3e6, math.nan
    got = np.array([np.nan if v is None else v for v in body["value"]])
    assert np.array_equal(got, want, equal_nan=True) and set(body["rank"]) == {0}
    status, body = get(server, f"/api/points?run={ids[2]}&tag=loss&x_min=100.5&x_max=200")
    assert body["step"] == list(range(101, 201))
    status, csv = get(server, f"/api/points?run={ids[0]}&tag=loss&format=csv&x_max=777")
    lines = csv.decode().splitlines()
    assert lines[0] == "step,rank,wall_time,value" and len(lines) == 779 and lines[-1].endswith(",nan")
    assert get(server, f"/api/points?run={ids[0]}&tag=nope")[0] == 404
    assert get(server, f"/api/points?run={ids[0]}&tag=loss&format=xml")[0] == 400


def test_groups_mean_std_and_band_come_from_the_server(served: tuple[ServerProcess, list[str]]) -> None:
    server, ids = served
    settle(server)
    status, body = get(server, f"/api/scalar_groups?runs={','.join(ids)}&tag=loss&group_by=lr&width=200")
    assert status == 200 and body["group_by"] == "lr"
    groups = {g["label"]: g for g in body["groups"]}
    assert set(groups) == {"0.1", "0.01"} and groups["0.1"]["runs"] == [ids[0], ids[2]]
    for label, members in (("0.1", (0, 2)), ("0.01", (1, 3))):
        g = groups[label]
        assert 200 <= len(g["x"]) <= 401 and g["x"] == sorted(g["x"])
        offsets = [OFFSETS[i] for i in members]
        quiet = [
            j
            for j, x in enumerate(g["x"])
            if abs(x - 1235) > 600 and abs(x - 777) > 600  # no spike, no NaN
        ]
        for j in quiet:
            assert g["count"][j] == 2
            assert g["std"][j] == pytest.approx(statistics.pstdev(offsets), abs=1e-9)
            assert g["max"][j] - g["min"][j] == pytest.approx(max(offsets) - min(offsets), abs=1e-9)
            assert g["mean"][j] - g["min"][j] == pytest.approx(statistics.mean(offsets) - min(offsets), abs=1e-9)
    for axis in ("relative", "wall"):
        status, body = get(server, f"/api/scalar_groups?runs={','.join(ids)}&tag=loss&group_by=seed&x={axis}")
        assert status == 200 and len(body["groups"]) == RUNS and all(max(g["count"]) == 1 for g in body["groups"])
    missing = get(server, f"/api/scalar_groups?runs={ids[0]}&tag=loss")
    assert missing[0] == 400 and "group_by" in missing[1]["error"]
    assert get(server, f"/api/scalar_groups?runs={ids[0]}&tag=loss&group_by=lr&x_min=5&x_max=1")[0] == 400
    assert get(server, "/api/scalar_groups?runs=nope&tag=loss&group_by=lr")[0] == 404


def test_a_version_1_database_is_upgraded_and_compacted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    con = duckdb.connect(str(data / "runstream.duckdb"))
    con.execute("CREATE TABLE schema_info (version INTEGER NOT NULL); INSERT INTO schema_info VALUES (1)")
    con.execute(
        "CREATE TABLE run_meta (run_id VARCHAR NOT NULL, project VARCHAR NOT NULL, name VARCHAR NOT NULL, "
        "config JSON, status VARCHAR NOT NULL, created_at DOUBLE NOT NULL, finished_at DOUBLE, host VARCHAR, "
        "world_size INTEGER NOT NULL)"
    )
    con.execute("INSERT INTO run_meta VALUES ('old', 'p', 'old', '{}', 'finished', 1.0, 2.0, 'h', 1)")
    con.execute("CREATE TABLE series (series_id INTEGER, run_id VARCHAR, kind VARCHAR, tag VARCHAR)")
    con.execute("INSERT INTO series VALUES (0, 'old', 'scalar', 'loss')")
    con.execute(
        "CREATE TABLE scalar_points (series_id INTEGER NOT NULL, step BIGINT NOT NULL, rank INTEGER NOT NULL, "
        "wall_time DOUBLE NOT NULL, value DOUBLE)"
    )
    con.execute("INSERT INTO scalar_points SELECT 0, 4999 - range, 0, range, range FROM range(5000)")
    con.execute(
        "CREATE TABLE series_stats (series_id INTEGER NOT NULL, points BIGINT NOT NULL, first_step BIGINT NOT NULL, "
        "last_step BIGINT NOT NULL, first_wall DOUBLE NOT NULL, last_wall DOUBLE NOT NULL)"
    )
    con.execute("INSERT INTO series_stats VALUES (0, 5000, 0, 4999, 0, 4999)")
    con.close()
    server = ServerProcess(data, ("--compact-seconds", "0.2")).start()
    try:
        settle(server)
        assert sql(server, "SELECT version FROM schema_info") == [(SCHEMA_VERSION,)]
        assert sql(server, "SELECT count(*), sum(value) FROM scalars WHERE run_id = 'old'") == [(5000, 12497500.0)]
        assert sql(server, "SELECT count(*) FROM scalar_points") == [(5000,)]
        _, body = get(server, "/api/points?run=old&tag=loss")
        assert body["step"] == list(range(5000)) and body["value"][0] == 4999.0
    finally:
        server.stop()
