"""Custom-scalar layouts on the Scalars tab in headless Chromium: tensorboardX's demo layout (a multiline chart
of regexes, margin charts of value/lower/upper) set with Run.set_custom_scalars_layout, drawn as chart groups
before the per-tag ones; a closed category starts collapsed and opens on a click; a tag's display name is its
chart's title. Screenshots: test-artifacts/custom-scalars-*.png.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runstream
from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000
LAYOUT = {
    "categories": [
        {
            "title": "Taiwan",
            "closed": False,
            "charts": [{"title": "twse", "multiline": {"tags": ["twse/0050", "twse/2330"]}}],
        },
        {
            "title": "USA",
            "closed": True,
            "charts": [
                {"title": "dow", "margin": {"series": [{"value": "dow/aaa", "lower": "dow/bbb", "upper": "dow/ccc"}]}}
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def layout_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("custom")) / "data").start()
    with runstream.init(project="custom", name="demo", server=server.address) as run:
        run.set_custom_scalars_layout(LAYOUT)
        for step in range(100):
            s = math.sin(step / 10)
            run.log(
                {
                    "twse/0050": s,
                    "twse/2330": math.cos(step / 10),
                    "dow/aaa": s,
                    "dow/bbb": s - 0.3,
                    "dow/ccc": s + 0.4,
                    "loss": 1 / (step + 1),
                },
                step=step,
            )
        run.set_tag_info("loss", display_name="Training loss", description="cross-entropy, mean over the batch")
    yield server
    server.stop()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"custom-scalars-{name}.png"))


def test_custom_scalar_layouts(browser: Any, layout_server: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{layout_server.http_url}/?project=custom&tab=scalars&smoothing=0")
        groups = page.get_by_test_id("custom-group")
        groups.first.wait_for(timeout=TIMEOUT_MS)
        assert groups.locator(".group-name").all_inner_texts() == ["Taiwan", "USA"]
        # the layout's groups come before the per-tag ones
        heads = page.locator(".chart-groups > section > button .group-name").all_inner_texts()
        assert heads[:2] == ["Taiwan", "USA"] and "dow" in heads[2:]

        multiline = page.locator("[data-testid=custom-chart][data-kind=multiline]")
        multiline.locator(".legend-item").nth(1).wait_for(timeout=TIMEOUT_MS)
        assert multiline.locator(".chart-tag").inner_text() == "twse"
        assert multiline.locator(".legend-label").all_inner_texts() == ["twse/0050", "twse/2330"]
        assert multiline.locator("canvas").count() >= 1
        # USA is closed in the layout: collapsed until clicked
        assert groups.nth(1).get_attribute("aria-expanded") == "false"
        assert page.locator("[data-testid=custom-chart][data-kind=margin]").is_hidden()
        screenshot(page, "collapsed")

        groups.nth(1).click()
        margin = page.locator("[data-testid=custom-chart][data-kind=margin]")
        margin.locator(".legend-item").first.wait_for(timeout=TIMEOUT_MS)
        assert margin.locator(".legend-label").all_inner_texts() == ["dow/aaa"]
        # the band: uPlot draws the lower and upper series as the envelope's edges
        assert (
            page.evaluate(
                "() => { const c = document.querySelector('[data-testid=custom-chart][data-kind=margin]').__chart;"
                " return c.u.series.length - 1; }"
            )
            == 3
        )
        loss = page.locator("[data-testid=chart][data-tag=loss]")
        loss.scroll_into_view_if_needed()
        assert loss.locator(".chart-tag").inner_text() == "Training loss"
        assert "loss" in (loss.locator(".chart-tag").get_attribute("title") or "")
        assert loss.locator(".tag-description").inner_text() == "cross-entropy, mean over the batch"
        page.locator("[data-testid=custom-chart][data-kind=margin]").scroll_into_view_if_needed()
        screenshot(page, "margin")
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
