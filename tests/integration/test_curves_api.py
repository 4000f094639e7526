"""/api/pr_curves, /api/custom_scalars, /api/tag_info and the boxes of /api/images against a real server,
logged through the SDK (Run.log_pr_curve, set_custom_scalars_layout, set_tag_info, log_image with boxes)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runstream
from support import ServerProcess

LAYOUT = {
    "categories": [
        {"title": "losses", "closed": False, "charts": [{"title": "all", "multiline": {"tags": ["loss/.*"]}}]},
        {
            "title": "bands",
            "closed": True,
            "charts": [{"title": "m", "margin": {"series": [{"value": "m/v", "lower": "m/lo", "upper": "m/hi"}]}}],
        },
    ]
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("curves")) / "data").start()
    rng = np.random.default_rng(0)
    ids = {}
    for name, steps in (("a", (0, 10, 20)), ("b", (5,))):
        with runstream.init(project="curves", name=name, server=server.address) as run:
            for step in steps:
                labels = rng.integers(0, 2, 200)
                run.log_pr_curve("pr/cls", labels, np.clip(labels * 0.5 + rng.random(200) * 0.6, 0, 1), 11, step=step)
            run.log({"loss/train": 1.0, "loss/val": 2.0}, step=0)
            run.set_tag_info("loss/train", display_name="Training loss", description="mean over the batch")
            if name == "a":
                run.set_custom_scalars_layout(LAYOUT)
                boxes = np.array([[1, 2, 10, 12], [0, 0, 4, 4]], np.float64)
                run.log_image("det", np.zeros((16, 20, 3), np.uint8), step=1, boxes=boxes, labels=["cat", "dog"])
                run.log_image("det", np.zeros((16, 20, 3), np.uint8), step=2)
            ids[name] = run.id
    yield server, ids
    server.stop()


def get(server: ServerProcess, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}{path}", timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_pr_curves_by_step(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    runs = f"{ids['a']},{ids['b']}"
    status, body = get(server, f"/api/pr_curves?runs={runs}&tag=pr/cls")
    assert status == 200 and body["tag"] == "pr/cls"
    a, b = body["series"]
    assert (a["run_id"], a["steps"], a["step"]) == (ids["a"], [0, 10, 20], 20)
    assert (b["run_id"], b["steps"], b["step"]) == (ids["b"], [5], 5)
    assert a["thresholds"] == pytest.approx([i / 10 for i in range(11)])
    for column in ("precision", "recall", "true_positives", "false_positives", "true_negatives", "false_negatives"):
        assert len(a[column]) == 11
    assert a["recall"][0] == pytest.approx(1.0)  # threshold 0: everything predicted positive
    assert a["true_positives"][0] + a["false_negatives"][0] == pytest.approx(a["true_positives"][0])
    status, body = get(server, f"/api/pr_curves?runs={runs}&tag=pr/cls&step=12")
    assert [s["step"] for s in body["series"]] == [10, 5]


def test_pr_curve_errors_say_what_is_wrong(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    assert get(server, f"/api/pr_curves?runs={ids['a']}&tag=nope") == (
        404,
        {"error": f"no PR curve tag 'nope' in run(s) {ids['a']}", "status": 404},
    )
    status, body = get(server, f"/api/pr_curves?runs={ids['a']}&tag=pr/cls&step=-3")
    assert status == 400 and "'step' must be between 0" in body["error"]
    status, body = get(server, "/api/pr_curves?tag=pr/cls")
    assert status == 400 and "missing query parameter 'runs'" in body["error"]


def test_layouts_and_tag_names(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    status, body = get(server, f"/api/custom_scalars?runs={ids['b']},{ids['a']}")
    assert status == 200 and body == {"layouts": [{"run_id": ids["a"], "layout": LAYOUT}]}
    status, body = get(server, f"/api/tag_info?runs={ids['a']},{ids['b']}")
    assert body == {"tags": {"loss/train": {"display_name": "Training loss", "description": "mean over the batch"}}}
    assert get(server, "/api/tag_info?runs=missing")[0] == 404


def test_images_carry_their_boxes(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    status, body = get(server, f"/api/images?run={ids['a']}&tag=det")
    assert status == 200
    first, second = body["images"]
    assert first["boxes"] == {"boxes": [[1, 2, 10, 12], [0, 0, 4, 4]], "labels": ["cat", "dog"]}
    assert second["boxes"] is None
