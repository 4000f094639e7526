"""The PR CURVES tab in headless Chromium: two runs' curves logged with Run.log_pr_curve into a live server,
drawn in one chart per tag at the last step, the step slider moved back, the hover readout (threshold,
precision, recall, TP/FP/TN/FN per run), the tag's display name. Screenshots: test-artifacts/prcurves-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runstream
from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def pr_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("prcurves")) / "data").start()
    rng = np.random.default_rng(1)
    for name, steps, skill in (("good", (0, 10, 20), 0.8), ("weak", (5, 15), 0.3)):
        with runstream.init(project="prc", name=name, server=server.address) as run:
            for step in steps:
                labels = rng.integers(0, 2, 500)
                quality = skill * (step + 10) / 30
                predictions = np.clip(labels * quality + rng.random(500) * (1 - quality), 0, 1)
                run.log_pr_curve("eval/pr", labels, predictions, 51, step=step)
                run.log_pr_curve("eval/pr_other", 1 - labels, 1 - predictions, 21, step=step)
            run.set_tag_info("eval/pr", display_name="Precision-recall (val)", description="cats vs dogs")
    yield server
    server.stop()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"prcurves-{name}.png"))


def test_prcurves_tab(browser: Any, pr_server: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{pr_server.http_url}/?project=prc&tab=prcurves")
        card = page.locator("[data-testid=pr-card][data-tag='eval/pr']")
        card.and_(page.locator("[data-drawn-runs='2']")).wait_for(timeout=TIMEOUT_MS)
        assert page.locator("[data-testid=pr-card]").count() == 2
        assert card.get_attribute("data-step") == "20"  # the last step of all
        assert int(card.get_attribute("data-points") or 0) > 40
        title = card.locator(".chart-tag")
        assert title.inner_text() == "Precision-recall (val)"
        assert "eval/pr" in (title.get_attribute("title") or "")
        assert card.locator(".tag-description").inner_text() == "cats vs dogs"
        assert card.get_by_test_id("pr-step").inner_text() == "step 20 · 5/5"  # steps 0, 5, 10, 15, 20
        legend = sorted(" ".join(t.split()) for t in card.locator(".legend-item").all_inner_texts())
        assert legend == ["good", "weak step 15"]  # weak's last curve is of step 15
        screenshot(page, "last-step")

        slider = card.get_by_test_id("pr-slider")
        slider.evaluate("(el) => { el.value = '1'; el.dispatchEvent(new Event('input', { bubbles: true })); }")
        page.wait_for_function(
            "document.querySelector(\"[data-testid=pr-card][data-tag='eval/pr']\").dataset.step === '5'",
            timeout=TIMEOUT_MS,
        )
        assert card.get_by_test_id("pr-step").inner_text() == "step 5 · 2/5"
        assert card.get_attribute("data-drawn-runs") == "2"  # good at step 0, weak at step 5

        box = card.get_by_test_id("pr-canvas").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3)
        rows = card.get_by_test_id("pr-readout").locator("tr")
        rows.first.wait_for(timeout=TIMEOUT_MS)
        assert rows.count() == 2
        cells = rows.first.locator("td").all_inner_texts()
        assert cells[0].strip() in ("good", "weak")
        threshold, precision, recall = (float(c) for c in cells[1:4])
        assert 0 <= threshold <= 1 and 0 <= precision <= 1 and 0 <= recall <= 1
        assert all(c.replace(",", "").isdigit() for c in cells[4:8])  # TP, FP, TN, FN counts
        screenshot(page, "hover")
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
