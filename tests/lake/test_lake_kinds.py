"""Every kind, not only scalars, reaches the lake: histograms, images, texts, embeddings, graphs, audio,
videos, PR curves, meshes and tensors logged through server A are in the lake's documented views (a
notebook's read-only ATTACH), in the views of B's `/api/sql`, and in B's page reads (its HTTP API), with
the same rows and answers a single-file server gives for the same calls; a run deleted through B is deleted
from each of them.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from lake_http import sql_rows

import runstream
from runstream_service.launcher import LocalServer
from runstream_service.store import lake
from runstream_service.store.kinds import KINDS, SCALAR
from runstream_service.store.lake import LakeConfig
from runstream_service.store.lake_changes import LakeChanges, LakeWatch

GRAPH = {
    "nodes": [
        {"name": "input", "op": "IO Node", "output_shape": [1, 4]},
        {"name": "fc", "op": "aten::linear", "scope": "Net/fc", "output_shape": [1, 2], "parameters": 10},
    ],
    "edges": [[0, 1]],
}
# every kind's view but scalars', and graph_nodes (over graphs)
VIEWS = [kind.view for kind in KINDS if kind is not SCALAR] + ["graph_nodes"]


def log_every_kind(server: LocalServer, run_id: str) -> None:
    rng = np.random.default_rng(7)
    run = runstream.init(project="kinds", name=run_id, run_id=run_id, server=server.address)
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log_histogram("weights", rng.normal(size=1000), step=step, wall_time=float(step))
        run.log_image("sample", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), step=step, wall_time=float(step))
        run.log_text("note", f"<b>step</b> {step}", step=step, wall_time=float(step))
        run.log_audio("tone", np.sin(np.arange(800) / 10.0) * 0.5, 8000, step=step, wall_time=float(step))
        run.log_video("clip", rng.integers(0, 255, (2, 4, 4, 3), dtype=np.uint8), 2, step=step, wall_time=float(step))
        run.log_pr_curve("pr", rng.integers(0, 2, 50), rng.random(50), step=step, wall_time=float(step))
        run.log_mesh("cloud", rng.random((1, 5, 3)), step=step, wall_time=float(step))
        run.log_tensor("state", np.arange(6, dtype=np.float32).reshape(2, 3) * step, step=step, wall_time=float(step))
    run.log_graph(GRAPH, tag="model", wall_time=0.0)
    run.set_tag_info("weights", display_name="Weights", description="of the <b>first</b> layer")
    run.set_custom_scalars_layout(
        {"categories": [{"title": "Training", "charts": [{"title": "losses", "multiline": {"tags": ["loss"]}}]}]}
    )
    run.log_embedding("features", rng.random((20, 4)), metadata=[str(i % 3) for i in range(20)], step=0)
    report = run.finish(timeout=60)
    assert report.unsent_points == 0 and report.rejected_batches == 0, report


def fingerprint_sql(view: str) -> str:
    """Per tag: rows, and a hash of every column but run_id and wall_time (a graph's nodes have no wall_time;
    an embedding's wall_time is when it was logged)."""
    excluded = "run_id, tag" if view.endswith("graph_nodes") else "run_id, tag, wall_time"
    hashed = f"CAST(sum(hash(COLUMNS(* EXCLUDE ({excluded})))) % 1000000007 AS BIGINT)"
    return f"SELECT tag, count(*), {hashed} FROM {view} WHERE run_id = ? GROUP BY tag ORDER BY tag"


# The page's reads of one run's other kinds (the answers compared without their wall times).
PAGE_READS = [
    "/api/tags?runs=kinds-a",
    "/api/histograms?run=kinds-a&tag=weights",
    "/api/images?run=kinds-a&tag=sample",
    "/api/image?run=kinds-a&tag=sample&step=1&rank=0",
    "/api/texts?run=kinds-a&tag=note",
    "/api/graphs?run=kinds-a",
    "/api/graph?run=kinds-a&tag=model",
    "/api/audio?run=kinds-a&tag=tone",
    "/api/audio/clip?run=kinds-a&tag=tone&step=2&rank=0",
    "/api/videos?run=kinds-a&tag=clip",
    "/api/video?run=kinds-a&tag=clip&step=1&rank=0",
    "/api/meshes?run=kinds-a&tag=cloud",
    "/api/mesh?run=kinds-a&tag=cloud&step=1&rank=0&sample=0",
    "/api/pr_curves?runs=kinds-a&tag=pr",
    "/api/pr_curves?runs=kinds-a&tag=pr&step=1",
    "/api/custom_scalars?runs=kinds-a",
    "/api/tag_info?runs=kinds-a",
    "/api/projector/embedding?run=kinds-a&tag=features&step=0",
    "/api/projector/neighbours?run=kinds-a&tag=features&step=0&index=3&k=5",
]


def page_read(server: LocalServer, path: str) -> Any:
    """The answer's JSON without wall times (each server stored its own), or its bytes."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}{path}", timeout=30) as reply:
        body = reply.read()
        if not reply.headers.get("Content-Type", "").startswith("application/json"):
            return body
    return _without_wall_times(json.loads(body))


def _without_wall_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_wall_times(v) for k, v in value.items() if k != "wall_time"}
    if isinstance(value, list):
        return [_without_wall_times(v) for v in value]
    return value


def sql(server: LocalServer, query: str, parameters: list[Any]) -> list[list[Any]]:
    for value in parameters:  # /api/sql takes no parameters: the run ids here are plain words
        query = query.replace("?", f"'{value}'", 1)
    return sql_rows(server, query)


def test_every_kind_reaches_the_lake_and_either_servers_views(tmp_path: Path, lake_config: LakeConfig) -> None:
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path]
    with (
        LocalServer(tmp_path / "a", args) as a,
        LocalServer(tmp_path / "b", args) as b,
        LocalServer(tmp_path / "single") as single,
    ):
        log_every_kind(a, "kinds-a")
        log_every_kind(single, "kinds-a")
        reference = {view: sql(single, fingerprint_sql(view), ["kinds-a"]) for view in VIEWS}
        assert all(reference.values()), reference
        notebook = duckdb.connect()
        lake.attach(notebook, lake_config, read_only=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # A's mover moves within about a second
            moved = {view: sql(b, fingerprint_sql(view), ["kinds-a"]) for view in VIEWS}
            if moved == reference:
                break
            time.sleep(0.5)
        assert moved == reference
        for table in ("tag_info", "custom_scalar_layouts"):  # what the run's writer said, as one file keeps it
            query = f"SELECT * EXCLUDE (updated_at) FROM {{}}{table} WHERE run_id = 'kinds-a'"
            assert notebook.execute(query.format("lake.")).fetchall() == [
                tuple(row) for row in sql(single, query.format(""), [])
            ], table
        for view in VIEWS:
            found = notebook.execute(fingerprint_sql(f"lake.{view}"), ["kinds-a"]).fetchall()
            assert [list(row) for row in found] == reference[view], view
            assert sql(a, fingerprint_sql(view), ["kinds-a"]) == reference[view], view  # A: lake + its outbox

        listed = [e for e in page_read(b, "/api/projector/embeddings")["embeddings"] if e["run_id"] == "kinds-a"]
        assert [(e["tag"], e["rows"], e["dims"], e["complete"]) for e in listed] == [("features", 20, 4, True)]
        for path in PAGE_READS:  # B's page shows A's run as one server shows its own
            assert page_read(b, path) == page_read(single, path), path
            assert page_read(a, path) == page_read(single, path), path

        request = urllib.request.Request(f"http://127.0.0.1:{b.http_port}/api/runs/kinds-a", method="DELETE")
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert reply.status == 200
        deadline = time.monotonic() + 30
        left = {view: 1 for view in VIEWS}
        while time.monotonic() < deadline and any(left.values()):
            notebook.execute("SELECT 1").fetchall()
            left = {
                view: notebook.execute(f"SELECT count(*) FROM lake.{view} WHERE run_id = 'kinds-a'").fetchall()[0][0]
                for view in VIEWS
            }
            time.sleep(0.5)
        assert left == {view: 0 for view in VIEWS}


class _NoLocalCommits:
    commit_number = 0

    def runs_changed_since(self, commit_number: int) -> list[str]:
        return []


def test_the_lake_watch_announces_runs_given_only_other_kinds(tmp_path: Path, lake_config: LakeConfig) -> None:
    """A lake server's events announce a run when another server moved its histograms (not only scalars)."""
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path]
    with LocalServer(tmp_path / "a", args) as a:
        watcher = duckdb.connect()
        lake.attach(watcher, lake_config, read_only=True)
        watch = LakeWatch(watcher, LakeChanges(_NoLocalCommits()))
        run = runstream.init(project="kinds", name="hist-only", run_id="hist-only", server=a.address)

        def announced_after(step: int) -> list[str]:
            run.log_histogram("weights", np.arange(100.0) * step, step=step)
            assert run.flush(timeout=30)
            deadline, runs = time.monotonic() + 30, []
            while "hist-only" not in runs and time.monotonic() < deadline:
                runs = watch.look() or []
                time.sleep(0.2)
            return runs

        watch.look()
        assert "hist-only" in announced_after(0)  # (its run row too)
        assert announced_after(1) == ["hist-only"]  # a histogram alone: no run row, no scalar
        run.finish(timeout=30)
