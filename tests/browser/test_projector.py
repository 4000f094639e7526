"""The Projector tab in headless Chromium: an embedding logged through the SDK (with labels and images)
drawn after PCA, searched, a point's nearest neighbours listed, t-SNE with progress, and 3-D."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runstream
from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 60_000
POINTS = 2000


@pytest.fixture(scope="module")
def projector_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("projector")) / "data").start()
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 5, (5, 32))
    which = rng.integers(0, 5, POINTS)
    vectors = (centers[which] + rng.normal(0, 1, (POINTS, 32))).astype(np.float32)
    images = np.zeros((POINTS, 8, 8), dtype=np.uint8)
    images[:, 2:6, 2:6] = (which * 50)[:, None, None]
    run = runstream.init(project="projector", name="emb", server=server.address)
    run.log_embedding("features", vectors, metadata=[f"class{c}" for c in which], images=images, step=0)
    run.finish()
    yield server
    server.stop()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_projector_tab(browser: Any, projector_server: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{projector_server.http_url}/?tab=projector")
        page.wait_for_function("window.__runstream?.projector?.firstDrawMs != null", timeout=TIMEOUT_MS)
        assert page.evaluate("window.__runstream.projector.points") == POINTS
        status = page.get_by_test_id("projector-status")
        assert "PCA of 2000 points" in status.inner_text() and "variance explained" in status.inner_text()
        screenshot(page, "projector-pca")

        page.get_by_test_id("projector-search").fill("class3")
        page.wait_for_function("document.querySelector('[data-testid=projector-status]').dataset.matches > 0")

        page.evaluate("window.__runstream.projector.selectPoint(7)")
        neighbours = page.get_by_test_id("projector-neighbours").locator("li")
        neighbours.first.wait_for(timeout=TIMEOUT_MS)
        assert neighbours.count() == 10
        screenshot(page, "projector-neighbours")

        page.get_by_test_id("projector-dims").select_option("3")
        page.wait_for_function("window.__runstream.projector.jobs >= 2", timeout=TIMEOUT_MS)
        page.wait_for_timeout(1500)
        screenshot(page, "projector-3d")
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
