"""tensorboardX's demo (its calls, tests/tbx_demo.py) through runstream's SummaryWriter into a live
server, then every tag it logged is found in its tab of the web UI; a screenshot per tab."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import ServerProcess

torch = pytest.importorskip("torch")

from tbx_demo import SmallNet, demo_calls  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def expected_tags() -> dict[str, list[str]]:
    """Each tab and the tags of the demo it must show."""
    histograms = [name for name, _ in SmallNet().named_parameters() if "bn" not in name]
    return {
        "scalars": [
            "data/scalar_systemtime",
            "data/scalar_customtime",
            "data/scalar_group/xsinx",
            "data/scalar_group/xcosx",
            "data/scalar_group/arctanx",
        ],
        "histograms": histograms,
        "images": ["Image", "imagebox_label"],
        "texts": ["Text", "markdown Text"],
        "audio": ["myAudio"],
        "video": ["video", "video_1_fps"],
        "prcurves": ["xoxo", "prcurve with raw data"],
        "projector": ["default", "noMetadata"],
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from runstream.tensorboard import SummaryWriter

    root = Path(tmp_path_factory.mktemp("tbxdemo"))
    server = ServerProcess(root / "data").start()
    writer = SummaryWriter(server=server.address, project="tbxdemo")
    demo_calls(writer, root / "all_scalars.json")
    writer.close()
    yield server
    server.stop()


def shown_tags(page: Any, tab: str) -> set[str]:
    """What the tab's view shows as tags: its elements' data-tag, the text of its leaf elements, and its
    select options' text split at ' · ' and ' / ' (the Projector lists 'run · tag · step')."""
    found = page.evaluate(
        """(tab) => {
            const view = document.getElementById('view-' + tab);
            const out = [...view.querySelectorAll('[data-tag]')].map(e => e.dataset.tag);
            for (const e of view.querySelectorAll('*')) if (!e.children.length) out.push(e.textContent.trim());
            for (const o of view.querySelectorAll('option')) out.push(...o.textContent.split(/ · | \\/ /));
            return out;
        }""",
        tab,
    )
    return {str(text).strip() for text in found}


@pytest.mark.parametrize("tab", list(expected_tags()))
def test_every_tag_of_the_demo_is_in_its_tab(page: Any, demo: ServerProcess, tab: str) -> None:
    page.goto(f"http://127.0.0.1:{demo.http_port}/?project=tbxdemo")
    page.wait_for_selector("[data-testid=run-row]")
    page.locator(f"[data-testid=tab-{tab}]").click()
    wanted = expected_tags()[tab]
    deadline = time.monotonic() + 30
    missing = wanted
    while missing and time.monotonic() < deadline:
        shown = shown_tags(page, tab)
        missing = [tag for tag in wanted if tag not in shown]
        time.sleep(0.25)
    page.wait_for_timeout(1500)  # let the tab's media and charts settle for the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"tbxdemo-{tab}.png"), full_page=True)
    assert missing == [], f"the {tab} tab does not show {missing} (it shows {sorted(shown)[:40]})"
    assert page.locator("[data-testid=error]").count() == 0
