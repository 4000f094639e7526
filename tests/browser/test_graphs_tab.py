"""The Graphs tab in headless Chromium: two small CNNs' graphs logged with SummaryWriter.add_graph into a
live server, drawn with their module scopes as closed boxes; a box opened, a node's details, a search,
and the two runs compared (a layer added, one made wider). Screenshots go to test-artifacts/graphs-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import ServerProcess

torch = pytest.importorskip("torch")
nn = torch.nn

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000


def cnn(width: int, extra: bool) -> Any:
    """A small VGG-like CNN; `extra` adds a third conv block, `width` the first block's channels."""

    def block(cin: int, cout: int) -> Any:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            blocks = [block(3, width), block(width, 16)] + ([block(16, 16)] if extra else [])
            self.features = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, x: Any) -> Any:
            return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    return Net()


@pytest.fixture(scope="module")
def graph_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    from runstream.tensorboard import SummaryWriter

    server = ServerProcess(Path(tmp_path_factory.mktemp("graphs")) / "data").start()
    example = torch.zeros(1, 3, 32, 32)
    for name, model in (("cnn-a", cnn(8, extra=False)), ("cnn-b", cnn(12, extra=True))):
        with SummaryWriter(name, project="graphs", server=server.address) as writer:
            writer.add_graph(model, example)
    yield server
    server.stop()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"graphs-{name}.png"))


def drawn_after(page: Any, draws: int) -> None:
    page.wait_for_function(f"(window.__runstream?.graphs?.draws ?? 0) > {draws}", timeout=TIMEOUT_MS)


def test_graphs_tab(browser: Any, graph_server: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{graph_server.http_url}/?project=graphs&tab=graphs")
        drawn_after(page, 0)
        page.get_by_test_id("graph-run").select_option(label="cnn-b")
        page.wait_for_function(
            "window.__runstream.graphs.run === document.querySelector('[data-testid=graph-run]').value",
            timeout=TIMEOUT_MS,
        )
        # collapsed at the top: the features and classifier modules are boxes, conv layers are not drawn
        boxes = page.locator("[data-testid=graph-box]")
        assert sorted(boxes.locator(".gr-title").all_text_contents()) == ["classifier", "features"]
        assert page.locator("[data-testid=graph-node]").filter(has_text="_convolution").count() == 0
        screenshot(page, "collapsed")

        draws = page.evaluate("window.__runstream.graphs.draws")
        boxes.filter(has_text="features").click()
        drawn_after(page, draws)
        assert page.locator(".gr-cluster-head .gr-cluster-label").all_text_contents() == ["▾ features"]
        inner = ["classifier", "features.0", "features.1", "features.2"]
        assert sorted(boxes.locator(".gr-title").all_text_contents()) == inner
        screenshot(page, "expanded")

        draws = page.evaluate("window.__runstream.graphs.draws")
        boxes.filter(has_text="features.1").click()
        drawn_after(page, draws)
        conv = page.locator("[data-testid=graph-node]").filter(has_text="_convolution")
        assert conv.count() == 1
        draws = page.evaluate("window.__runstream.graphs.draws")
        conv.click()
        drawn_after(page, draws)
        details = page.get_by_test_id("graph-details")
        assert page.get_by_test_id("graph-node-name").inner_text() == "features.1.0/_convolution"
        text = details.inner_text()
        assert "aten::_convolution" in text and "1\u00d716\u00d716\u00d716" in text and f"{12 * 16 * 9 + 16:,}" in text
        assert "stride" in text and "Conv2d" in text
        screenshot(page, "details")

        search = page.get_by_test_id("graph-search")
        search.fill("linear")
        page.wait_for_function("document.querySelector('[data-testid=graph-matches]').dataset.count === '2'")
        draws = page.evaluate("window.__runstream.graphs.draws")
        search.press("Enter")
        drawn_after(page, draws)
        assert page.locator("[data-testid=graph-node].gr-match").count() == 2
        assert page.get_by_test_id("graph-node-name").inner_text() == "classifier.0/linear"
        screenshot(page, "search")

        compare = page.get_by_test_id("graph-compare")
        option = compare.locator("option").filter(has_text="cnn-a").first.get_attribute("value")
        draws = page.evaluate("window.__runstream.graphs.draws")
        compare.select_option(option)
        drawn_after(page, draws)
        summary = page.get_by_test_id("graph-diff-summary").inner_text()
        # cnn-b over cnn-a: a third block (conv, batch norm, relu, pool) added; the first conv is wider,
        # which changes its shape and parameters and those of the nodes it feeds
        assert "vs cnn-a: +4 added, \u22120 removed, ~6 changed" in summary, summary
        assert page.get_by_test_id("graph-diff").get_by_text("features.2.0/_convolution").count() == 1
        assert page.locator("[data-testid=graph-box].gr-has-diff, [data-testid=graph-node].gr-added").count() >= 1
        screenshot(page, "compare")

        # a click on an open box's label closes it (and the boxes inside it)
        page.get_by_test_id("graph-fit").click()
        draws = page.evaluate("window.__runstream.graphs.draws")
        page.locator(".gr-cluster-head").filter(has_text="▾ features").first.click()
        drawn_after(page, draws)
        assert "features" in boxes.locator(".gr-title").all_text_contents()
        assert "features.1" not in page.locator(".gr-cluster-label").all_text_contents()

        # zoom with the wheel changes the viewBox
        box_before = page.locator("svg.gr-svg").get_attribute("viewBox")
        page.mouse.move(600, 400)
        page.mouse.wheel(0, -300)
        page.wait_for_function(f"document.querySelector('svg.gr-svg').getAttribute('viewBox') !== '{box_before}'")
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
