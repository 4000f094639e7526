"""Retention on a live server: old runs deleted per project, old scalar series thinned with charts still drawn."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import runstream
from support import ServerProcess


def get(server: ServerProcess, path: str) -> Any:
    with urllib.request.urlopen(f"{server.http_url}{path}", timeout=30) as reply:
        return json.load(reply)


def sql(server: ServerProcess, query: str) -> list[list[Any]]:
    body = json.dumps({"sql": query, "limit": 100_000}).encode()
    request = urllib.request.Request(
        f"{server.http_url}/api/sql", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        rows: list[list[Any]] = json.load(reply)["rows"]
    return rows


def wait_for(what: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_runs_that_ended_longer_ago_than_their_projects_rule_are_deleted(tmp_path: Path) -> None:
    rules = tmp_path / "retention.toml"
    rules.write_text("interval_seconds = 0.5\n[projects.old]\ndelete_after_days = 0.00003\n")  # 2.6 s
    with ServerProcess(tmp_path / "data", ("--retention", str(rules))) as server:
        ids = {}
        for project in ("old", "kept"):
            with runstream.init(project=project, name="finished", server=server.address) as run:
                run.log({"x": 1.0}, step=0)
                ids[project] = run.id
        running = runstream.init(project="old", name="running", server=server.address)
        running.log({"x": 1.0}, step=0)
        running.flush()
        health = server.health()["retention"]
        assert health["projects"] == {"old": {"delete_after_days": 0.00003, "raw_after_days": None}}
        wait_for(lambda: server.health()["retention"]["runs_deleted"] == 1)
        names = {
            (r["project"], r["name"]) for p in ("old", "kept") for r in get(server, f"/api/runs?project={p}")["runs"]
        }
        assert names == {("old", "running"), ("kept", "finished")}
        assert sql(server, "SELECT run_id, deleted_by FROM run_deletions") == [[ids["old"], "retention"]]
        running.finish()


def test_old_scalar_series_keep_their_rollup_points_and_charts_draw_the_same(tmp_path: Path) -> None:
    args = ("--raw-points-after", "p=0.0001", "--retention-interval", "0.5", "--compact-seconds", "0.2")  # 8.6 s
    with ServerProcess(tmp_path / "data", args) as server:
        values = np.random.default_rng(7).normal(size=4096).cumsum()
        with runstream.init(project="p", name="long", server=server.address) as run:
            for step, value in enumerate(values):
                run.log({"loss": float(value)}, step=step)
            run_id = run.id
        wait_for(lambda: server.health()["uncompacted_points"] == 0)
        chart = f"/api/scalars?runs={run_id}&tag=loss&width=64"  # columns of 64 steps: rollups
        before = get(server, chart)
        wait_for(lambda: server.health()["retention"]["points_removed"] > 0)
        health = server.health()["retention"]
        assert health["series_thinned"] == 1 and health["last_error"] is None
        assert get(server, chart) == before
        (kept,) = sql(server, f"SELECT count(*) FROM scalars WHERE run_id = '{run_id}'")[0]
        assert kept <= 4096 // 4 and kept == 4096 - health["points_removed"]
        # Zoomed in (columns of one step): the kept points, each as logged: every bucket's first, last, min and max.
        close = get(server, f"/api/scalars?runs={run_id}&tag=loss&width=4096")["series"][0]
        assert len(close["x"]) == kept
        for bucket in range(0, 4096, 16):
            part = values[bucket : bucket + 16]
            shown = {x: y for x, y in zip(close["x"], close["y"], strict=True) if bucket <= x < bucket + 16}
            for step in (bucket, bucket + 15, bucket + int(np.argmin(part)), bucket + int(np.argmax(part))):
                assert math.isclose(shown[step], values[step])
