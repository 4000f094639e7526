"""The HPARAMS tab in headless Chromium: a sweep logged with SummaryWriter.add_hparams (and one run with a
nested config and a training history) into a live server; the table, sorting, a column filter, a brush on
the parallel coordinates, the colour and scatter choices, the column chooser, and the ticked runs only.
Screenshots go to test-artifacts/hparams-*.png.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runstream
from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
OPTIMIZERS = ("sgd", "adam")


def accuracy(lr: float, optimizer: str, layers: int) -> float:
    """A made-up response surface: best near lr 3e-3 with adam and 4 layers."""
    import math

    return round(
        0.95 - 0.04 * abs(math.log10(lr) + 2.5) ** 2 - (0.05 if optimizer == "sgd" else 0) - 0.01 * abs(layers - 4), 4
    )


@pytest.fixture(scope="module")
def hparams_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    from runstream.tensorboard import SummaryWriter

    server = ServerProcess(Path(tmp_path_factory.mktemp("hparams")) / "data").start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with SummaryWriter("sweep", project="hp", server=server.address) as writer:
            for lr in LRS:
                for optimizer in OPTIMIZERS:
                    for layers in (2, 4):
                        acc = accuracy(lr, optimizer, layers)
                        writer.add_hparams(
                            {"lr": lr, "optimizer": optimizer, "layers": layers, "bn": layers == 4},
                            {"hparam/accuracy": acc, "hparam/loss": round(1 - acc, 4)},
                            hparam_domain_discrete={"optimizer": ["sgd", "adam"]},
                            run_name=f"lr{lr:g}-{optimizer}-{layers}",
                        )
    with runstream.init(
        project="hp", name="manual", config={"optimizer": {"name": "adam", "lr": 0.001}}, server=server.address
    ) as run:
        for step in range(100):
            run.log({"hparam/loss": 1.0 / (step + 1)}, step=step)
    yield server
    server.stop()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"hparams-{name}.png"), full_page=True)


def draws(page: Any) -> int:
    return int(page.evaluate("window.__runstream?.hparams?.draws ?? 0"))


def drawn_after(page: Any, count: int) -> None:
    page.wait_for_function(f"(window.__runstream?.hparams?.draws ?? 0) > {count}", timeout=TIMEOUT_MS)


def test_hparams_tab(browser: Any, hparams_server: ServerProcess) -> None:
    runs = len(LRS) * len(OPTIMIZERS) * 2
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{hparams_server.http_url}/?project=hp&tab=hparams")
        page.wait_for_function(f"window.__runstream?.hparams?.rows === {runs + 1}", timeout=TIMEOUT_MS)
        rows = page.locator("[data-testid=hp-row]")
        assert rows.count() == runs + 1  # every listed run, not only the 20 the charts show
        headers = page.locator("[data-testid=hp-th]").all_text_contents()
        assert headers[:5] == ["Run", "lr", "optimizer", "layers", "bn"]
        assert "optimizer.name" in headers and "hparam/accuracy" in headers
        manual = page.locator("[data-testid=hp-row]", has_text="manual")
        assert "0.01" in manual.inner_text()  # the last loss by step: 1/100
        screenshot(page, "table")

        # sort by accuracy, best first: the response surface's best run
        n = draws(page)
        page.locator("[data-testid=hp-th]", has_text="hparam/accuracy").click()
        page.locator("[data-testid=hp-th]", has_text="hparam/accuracy").click()
        first = rows.first.inner_text().strip()
        assert first.startswith("sweep/lr0.003-adam-4"), first

        # a filter on the optimizer column, then a range on lr
        page.locator("[data-testid=hp-filter][data-key='hparams.optimizer']").fill("=adam")
        page.wait_for_function(f"window.__runstream.hparams.shown === {runs // 2}", timeout=TIMEOUT_MS)
        page.locator("[data-testid=hp-filter][data-key='hparams.lr']").fill("0.001..0.01")
        page.wait_for_function("window.__runstream.hparams.shown === 6", timeout=TIMEOUT_MS)
        assert rows.count() == 6
        page.get_by_test_id("hp-clear").click()
        page.wait_for_function(f"window.__runstream.hparams.shown === {runs + 1}", timeout=TIMEOUT_MS)

        # brush the top of the accuracy axis (the last default axis): runs outside leave the table
        n = draws(page)
        box = page.get_by_test_id("hp-parcoords").bounding_box()
        axis_x = page.evaluate("window.__runstream.hparams.axisX")
        x = box["x"] + axis_x[-2]  # accuracy is before loss
        page.mouse.move(x, box["y"] + 36)
        page.mouse.down()
        page.mouse.move(x, box["y"] + 90, steps=4)
        page.mouse.up()
        drawn_after(page, n)
        shown = page.evaluate("window.__runstream.hparams.shown")
        assert 0 < shown < runs
        assert rows.count() == shown
        screenshot(page, "brushed")

        # a click on the axis clears the brush
        page.mouse.click(x, box["y"] + 150)
        page.wait_for_function(f"window.__runstream.hparams.shown === {runs + 1}", timeout=TIMEOUT_MS)

        # colour by loss, scatter of accuracy against lr; the column chooser hides a column
        page.get_by_test_id("hp-color").select_option("hparam/loss")
        page.get_by_test_id("hp-scatter-x").select_option("hparams.lr")
        page.get_by_test_id("hp-scatter-y").select_option("hparam/accuracy")
        page.get_by_test_id("hp-columns").click()
        page.locator("[data-testid=hp-choose-table][data-key='hparams.bn']").uncheck()
        assert "bn" not in page.locator("[data-testid=hp-th]").all_text_contents()
        screenshot(page, "chooser")

        # runs ticked in the runs panel: only those
        page.get_by_test_id("runs-none").click()
        page.wait_for_function("window.__runstream.hparams.rows === 0", timeout=TIMEOUT_MS)
        page.locator("[data-testid=run-row]", has_text="manual").locator("input").check()
        page.wait_for_function("window.__runstream.hparams.rows === 1", timeout=TIMEOUT_MS)
        assert rows.count() == 1
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
