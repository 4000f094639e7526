"""Texts as Markdown in headless Chromium: tensorboardX demo's Markdown table and hostile texts logged with
SummaryWriter.add_text into a live server; the table renders, and no logged script, handler or javascript:
link runs or survives in the page. Screenshot: test-artifacts/texts-markdown.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000

HOSTILE = "\n\n".join(
    [
        "## Notes with *emphasis*, `code` and a [safe link](https://example.org/docs)",
        "<script>window.__pwned = 'script'</script>",
        '<img src="/no-such-image.png" onerror="window.__pwned = \'onerror\'">',
        "[a javascript: link](javascript:window.__pwned='link')",
        "<a href=\"JaVaScRiPt:window.__pwned='raw'\">raw javascript: link</a>",
        '<svg onload="window.__pwned=\'svg\'"><circle r="4"/></svg>',
        "<iframe src=\"javascript:parent.__pwned='iframe'\"></iframe>",
        "<style>body { background: red !important }</style>",
        "<details open ontoggle=\"window.__pwned='toggle'\"><summary>more</summary>details</details>",
    ]
)


@pytest.fixture(scope="module")
def text_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[ServerProcess]:
    from runstream.tensorboard import SummaryWriter

    server = ServerProcess(Path(tmp_path_factory.mktemp("markdown")) / "data").start()
    with SummaryWriter("md-run", project="md", server=server.address) as writer:
        for n_iter in range(2):
            writer.add_text("Text", "text logged at step:" + str(n_iter), n_iter)
            writer.add_text("markdown Text", """a|b\n-|-\nc|d""", n_iter)  # as tensorboardX's examples/demo.py
        writer.add_text("hostile", HOSTILE, 0)
    yield server
    server.stop()


def test_texts_render_as_sanitised_markdown(browser: Any, text_server: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(f"{text_server.http_url}/?project=md&tab=texts")
        bodies = page.locator("[data-testid=text-body]")
        page.wait_for_function("document.querySelectorAll('[data-testid=text-body]').length === 5", timeout=TIMEOUT_MS)
        table = page.locator("[data-testid=text-card][data-tag='markdown Text'] table").first
        assert table.locator("th").all_text_contents() == ["a", "b"]
        assert table.locator("td").all_text_contents() == ["c", "d"]
        hostile = page.locator("[data-testid=text-card][data-tag=hostile] [data-testid=text-body]")
        assert hostile.locator("h2 em").inner_text() == "emphasis"
        safe = hostile.locator("a", has_text="safe link")
        assert safe.get_attribute("href") == "https://example.org/docs"
        assert safe.get_attribute("rel") == "noopener noreferrer"
        page.wait_for_timeout(500)  # an image's onerror or a toggle event would have fired by now
        assert page.evaluate("window.__pwned === undefined"), page.evaluate("window.__pwned")
        html = hostile.inner_html().lower()
        for bad in ("<script", "onerror", "onload", "ontoggle", '="javascript:', "<iframe", "<style", "<svg"):
            assert bad not in html, f"{bad} survived: {html}"
        assert page.evaluate("document.querySelectorAll('a[href^=\"javascript:\" i]').length") == 0
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
        assert bodies.count() == 5 and not dialogs
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "texts-markdown.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
