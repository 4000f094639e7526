"""Run actions in the runs panel, in headless Chromium against a live server: rename, tags and note through the
row's dialog; archiving hides a run until "archived" is ticked; a delete asks first (Cancel keeps the run) and
then removes it from the page and the database; a crashed run shows `crashed`.
Screenshots: test-artifacts/run-actions-*.png.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

import runstream
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000


def sql(server: ServerProcess, query: str) -> list[list[Any]]:
    request = urllib.request.Request(
        f"{server.http_url}/api/sql",
        data=json.dumps({"sql": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        rows: list[list[Any]] = json.load(reply)["rows"]
        return rows


@pytest.fixture(scope="module")
def life_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("life")) / "data", ("--crash-after", "1")).start()
    for name in ("keep", "typo"):
        with runstream.init(project="life", name=name, run_id=f"id-{name}", server=server.address) as run:
            for step in range(50):
                run.log({"loss": 1 / (step + 1)}, step=step)
    with grpc.insecure_channel(server.address) as channel:
        pb_grpc.IngestStub(channel).OpenRun(pb.OpenRunRequest(run_id="id-lost", project="life", name="lost"))
    deadline = time.monotonic() + 30
    while sql(server, "SELECT status FROM runs WHERE run_id = 'id-lost'") != [["crashed"]]:
        assert time.monotonic() < deadline, "the abandoned run was never marked crashed"
        time.sleep(0.2)
    yield server
    server.stop()


def test_rename_tag_archive_and_delete_from_the_page(page: Any, life_server: ServerProcess) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{life_server.http_url}/?project=life")
    rows = page.locator("[data-testid=run-row]")
    rows.first.wait_for(timeout=TIMEOUT_MS)
    assert rows.count() == 3
    lost = page.locator("[data-testid=run-row][data-run-id=id-lost]")
    assert lost.locator(".status-crashed").inner_text() == "crashed"

    page.locator("[data-testid=run-row][data-run-id=id-typo] [data-testid=run-actions]").click()
    dialog = page.locator("[data-testid=run-dialog]")
    dialog.wait_for(timeout=TIMEOUT_MS)
    dialog.locator("[data-testid=run-name-input]").fill("fixed")
    dialog.locator("[data-testid=run-tags-input]").fill("baseline, lr sweep")
    dialog.locator("[data-testid=run-note-input]").fill("first try, diverged at 3k steps")
    page.screenshot(path=str(ARTIFACTS / "run-actions-dialog.png"))
    dialog.locator("[data-testid=run-save]").click()
    typo = page.locator("[data-testid=run-row][data-run-id=id-typo]")
    page.wait_for_function(
        "() => document.querySelector('[data-run-id=id-typo] .c-name')?.textContent.startsWith('fixed')",
        timeout=TIMEOUT_MS,
    )
    assert typo.locator("[data-testid=run-tag]").all_inner_texts() == ["baseline", "lr sweep"]
    assert sql(life_server, "SELECT name, tags, note FROM runs WHERE run_id = 'id-typo'") == [
        ["fixed", ["baseline", "lr sweep"], "first try, diverged at 3k steps"]
    ]

    typo.locator("[data-testid=run-actions]").click()
    dialog.locator("[data-testid=run-archive-input]").check()
    dialog.locator("[data-testid=run-save]").click()
    typo.wait_for(state="detached", timeout=TIMEOUT_MS)
    assert rows.count() == 2
    page.locator("[data-testid=runs-show-archived]").check()
    typo.locator("[data-testid=run-archived]").wait_for(timeout=TIMEOUT_MS)
    assert "archived=1" in page.url
    page.screenshot(path=str(ARTIFACTS / "run-actions-archived.png"))

    keep = page.locator("[data-testid=run-row][data-run-id=id-keep]")
    keep.locator("[data-testid=run-actions]").click()
    dialog.locator("[data-testid=run-delete]").click()
    page.locator("[data-testid=confirm-delete]").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "run-actions-confirm-delete.png"))
    page.locator("[data-testid=cancel-delete]").click()
    assert keep.is_visible() and sql(life_server, "SELECT count(*) FROM runs WHERE run_id = 'id-keep'") == [[1]]

    keep.locator("[data-testid=run-actions]").click()
    dialog.locator("[data-testid=run-delete]").click()
    page.locator("[data-testid=confirm-delete]").click()
    keep.wait_for(state="detached", timeout=TIMEOUT_MS)
    assert sql(life_server, "SELECT count(*) FROM scalars WHERE run_id = 'id-keep'") == [[0]]
    assert sql(life_server, "SELECT run_id, name, points FROM run_deletions") == [["id-keep", "keep", 50]]
    assert rows.count() == 2
