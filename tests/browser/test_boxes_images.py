"""Image boxes in headless Chromium: an image logged with boxes and labels (Run.log_image(boxes=, labels=))
shows each box over the image, in place and scaled with it, with its label. Screenshot:
test-artifacts/boxes-images.png.
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
BOXES = [[5, 5, 30, 20], [35, 10, 55, 35]]


@pytest.fixture(scope="module")
def boxes_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("boxes")) / "data").start()
    image = np.zeros((40, 60, 3), np.uint8)
    image[5:20, 5:30] = (200, 60, 60)  # the first box's object
    image[10:35, 35:55] = (60, 160, 60)
    with runstream.init(project="boxes", name="detector", server=server.address) as run:
        run.log_image("detections", image, step=3, boxes=np.array(BOXES, float), labels=["car", "tree"])
    yield server
    server.stop()


def test_boxes_over_images(browser: Any, boxes_server: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{boxes_server.http_url}/?project=boxes&tab=images")
        boxes = page.get_by_test_id("image-box")
        boxes.nth(1).wait_for(timeout=TIMEOUT_MS)
        image = page.get_by_test_id("image")
        page.wait_for_function("document.querySelector('[data-testid=image]').naturalWidth === 60")
        frame = image.bounding_box()
        assert frame is not None
        scale = frame["width"] / 60  # small images are shown 3 times as big: the boxes scale with them
        assert scale == pytest.approx(3)
        assert [b.get_attribute("data-label") for b in boxes.all()] == ["car", "tree"]
        assert boxes.locator(".img-box-label").all_inner_texts() == ["car", "tree"]
        for box, (x0, y0, x1, y1) in zip(boxes.all(), BOXES):
            got = box.bounding_box()
            assert got is not None
            assert got["x"] - frame["x"] == pytest.approx(x0 * scale, abs=1.5)
            assert got["y"] - frame["y"] == pytest.approx(y0 * scale, abs=1.5)
            assert got["width"] == pytest.approx((x1 - x0) * scale, abs=1.5)
            assert got["height"] == pytest.approx((y1 - y0) * scale, abs=1.5)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "boxes-images.png"))
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
