"""The dashboard's JSON API against a real server holding real runs."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import runstream
from support import ServerProcess

STEPS = 5_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("api")) / "data").start()
    ids = {}
    for name, lr in (("alpha", 0.1), ("beta", 0.01)):
        with runstream.init(project="api", name=name, config={"lr": lr, "opt": "adam"}, server=server.address) as run:
            for step in range(STEPS):
                value = math.nan if step == 10 else (1000.0 if step == 4321 else step / STEPS)
                run.log({"train/loss": value, "lr": lr}, step=step)
            run.log_histogram("weights", np.arange(100.0), step=0, bins=10)
            run.log_histogram("weights", np.arange(100.0) * 2, step=1, bins=10)
            run.log_image("sample", np.full((4, 6, 3), 200, np.uint8), step=3)
            ids[name] = run.id
    with runstream.init(project="other", name="gamma", server=server.address) as run:
        run.log({"x": 1.0}, step=0)
        ids["gamma"] = run.id
    yield server, ids
    server.stop()


def get(server: ServerProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
            kind = reply.headers.get("Content-Type", "")
            return reply.status, json.loads(body) if "json" in kind else body, dict(reply.headers)
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else None, dict(error.headers)


def test_projects_and_runs_with_filters(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, _ = served
    assert get(server, "/api/projects")[1] == {
        "projects": [{"project": "api", "runs": 2}, {"project": "other", "runs": 1}]
    }
    status, body, _ = get(server, "/api/runs?project=api")
    assert status == 200 and {r["name"] for r in body["runs"]} == {"alpha", "beta"}
    assert body["config_keys"] == ["lr", "opt"]
    alpha = next(r for r in body["runs"] if r["name"] == "alpha")
    assert (
        alpha["config"] == {"lr": 0.1, "opt": "adam"}
        and alpha["status"] == "finished"
        and alpha["last_step"] == STEPS - 1
    )
    assert [r["name"] for r in get(server, "/api/runs?q=alp")[1]["runs"]] == ["alpha"]
    assert [r["name"] for r in get(server, "/api/runs?config.lr=0.01")[1]["runs"]] == ["beta"]


def test_tags(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    assert get(server, f"/api/tags?runs={ids['alpha']},{ids['beta']}")[1] == {
        "scalars": ["lr", "train/loss"],
        "histograms": ["weights"],
        "images": ["sample"],
        "texts": [],
        "graphs": [],  # every kind of store/kinds.py has its list
        "embeddings": [],
        "audio": [],
        "videos": [],
        "pr_curves": [],
        "meshes": [],
        "tensors": [],
    }
    status, body, _ = get(server, "/api/tags?runs=nope")
    assert status == 404 and body == {"error": "unknown run id(s): nope", "status": 404}


def test_scalars_downsampled_keep_the_spike_and_exact_when_zoomed(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    query = f"/api/scalars?runs={ids['alpha']},{ids['beta']}&tag=train/loss&width=200"
    status, body, _ = get(server, query + "&bands=1")
    assert status == 200 and [s["run_id"] for s in body["series"]] == [ids["alpha"], ids["beta"]]
    for series in body["series"]:
        assert not series["exact"] and series["count"] == STEPS
        # One column per pixel, each of whole step buckets of a power-of-two width.
        assert len(series["band_x"]) == 200 and max(series["band_max"]) == 1000.0
        assert len(series["x"]) <= 4 * len(series["band_x"]) and max(y for y in series["y"] if y is not None) == 1000.0
    # The envelope only when asked for: the same points without it.
    status, plain, _ = get(server, query)
    assert [sorted(s) for s in plain["series"]] == [["count", "exact", "run_id", "x", "y"]] * 2
    assert [s["x"] for s in plain["series"]] == [s["x"] for s in body["series"]]
    status, body, _ = get(server, f"/api/scalars?runs={ids['alpha']}&tag=train/loss&width=500&x_max=100")
    assert body["series"][0]["exact"] and body["series"][0]["y"][10] is None  # NaN, as a gap
    status, body, _ = get(server, f"/api/scalars?runs={ids['alpha']}&tag=train/loss&width=500&x_min=4000&x_max=4400")
    (series,) = body["series"]
    assert series["exact"] and series["x"] == [float(s) for s in range(4000, 4401)]
    assert series["y"][321] == 1000.0


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("tag=train/loss", 400, "missing query parameter 'runs'"),
        ("runs={alpha}", 400, "missing query parameter 'tag'"),
        ("runs={alpha}&tag=train/loss&width=0", 400, "'width' must be between 1 and 10000"),
        ("runs={alpha}&tag=train/loss&width=wide", 400, "'width' must be an integer"),
        ("runs={alpha}&tag=train/loss&x=epoch", 400, "'x' must be one of step, relative, wall"),
        ("runs={alpha}&tag=train/loss&x_min=5&x_max=1", 400, "must not be greater"),
        ("runs={alpha}&tag=train/loss&x_min=nan", 400, "'x_min' must be finite"),
        ("runs={alpha}&tag=train/loss&bands=yes", 400, "'bands' must be one of 0, 1"),
        ("runs={alpha}&tag=no/such/tag", 404, "no scalar tag 'no/such/tag'"),
        ("runs=missing&tag=train/loss", 404, "unknown run id(s): missing"),
    ],
)
def test_bad_scalar_queries(served: tuple[ServerProcess, dict[str, str]], query: str, status: int, words: str) -> None:
    server, ids = served
    got_status, body, _ = get(server, "/api/scalars?" + query.format(alpha=ids["alpha"]))
    assert got_status == status and body["status"] == status and words in body["error"]


def test_histograms_and_percentiles(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    status, body, _ = get(server, f"/api/histograms?run={ids['alpha']}&tag=weights")
    assert status == 200 and [h["step"] for h in body["histograms"]] == [0, 1]
    assert body["histograms"][0]["bucket_counts"] == [10.0] * 10 and len(body["histograms"][0]["bucket_limits"]) == 11
    percentiles = body["percentiles"]
    assert percentiles["steps"] == [0, 1] and percentiles["q"][4] == 50
    assert percentiles["values"][0][0] == 0.0 and percentiles["values"][0][-1] == 99.0
    assert percentiles["values"][1][4] == pytest.approx(99.0)


def test_images_list_and_bytes_with_cache_headers(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, ids = served
    status, body, _ = get(server, f"/api/images?run={ids['alpha']}&tag=sample")
    (image,) = body["images"]
    assert (image["step"], image["width"], image["height"], image["mime"]) == (3, 6, 4, "image/png")
    status, data, headers = get(server, image["url"])
    assert status == 200 and headers["Content-Type"] == "image/png" and "immutable" in headers["Cache-Control"]
    assert np.array_equal(np.array(Image.open(io.BytesIO(data))), np.full((4, 6, 3), 200, np.uint8))
    assert get(server, image["url"], {"If-None-Match": headers["ETag"]})[0] == 304
    status, body, _ = get(server, f"/api/image?run={ids['alpha']}&tag=sample&step=99")
    assert status == 404 and "no image 'sample' at step 99" in body["error"]


def test_metrics_and_health(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, _ = served
    status, body, headers = get(server, "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    points = next(line for line in text.splitlines() if line.startswith("runstream_points_ingested_total"))
    assert float(points.split()[-1]) == 2 * 2 * STEPS + 4 + 2 + 1
    for name in (
        "runstream_batches_rejected_total",
        "runstream_queue_points",
        'runstream_commit_seconds_bucket{le="+Inf"}',
        "runstream_uncompacted_points",
        "runstream_compactions_total",
        "runstream_generations",
    ):
        assert name in text
    assert get(server, "/healthz")[1]["status"] == "ok"
    status, body, _ = get(server, "/api/nothing-here")
    assert status == 404 and body["status"] == 404


def test_live_updates_arrive_as_server_sent_events(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, _ = served
    subscribed = threading.Event()  # "retry:" comes after the server noted its last commit: later ones are reported
    received: list[str] = []

    def listen() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/api/events", timeout=30) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("retry:"):
                    subscribed.set()
                elif line.startswith("data:"):
                    received.append(line[5:])
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(15), "the event stream did not open"
    with runstream.init(project="api", name="live", server=server.address) as run:
        run.log({"x": 1.0}, step=0)
        run.flush()
        live_id = run.id
        listener.join(15)
    assert received, "no update event arrived"
    assert live_id in json.loads(received[0])["runs"]


def test_the_sql_command_asks_a_running_server(served: tuple[ServerProcess, dict[str, str]]) -> None:
    server, _ = served
    url = f"http://127.0.0.1:{server.http_port}"
    command = [sys.executable, "-m", "runstream_service", "sql", "--url", url, "--format", "csv"]
    done = subprocess.run(
        [*command, "SELECT name FROM runs WHERE name <> 'live' ORDER BY name"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.split() == ["name", "alpha", "beta", "gamma"]
    refused = subprocess.run([*command, "DELETE FROM runs"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "runstream sql:" in refused.stderr
