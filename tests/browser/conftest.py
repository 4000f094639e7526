"""Browser tests: the real server, the real built UI, Debian's Chromium driven by Playwright.

Chromium comes from the system (`apt-get install chromium`); nothing is downloaded. Without it
these tests are skipped, unless RUNSTREAM_REQUIRE_BROWSER=1 (as in CI), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ServerProcess

STATIC = Path(__file__).resolve().parents[2] / "dashboards" / "runstream_dashboards" / "static" / "index.html"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return os.environ.get("RUNSTREAM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


# Per module, not per session: while Playwright's sync API runs, its event loop counts as running in the
# main thread, and the tests collected after the browser tests (asyncio.run in tests/unit) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _chromium()
    missing = None if executable else "Chromium is not installed (apt-get install chromium)"
    if missing is None and not STATIC.exists():
        missing = "the web UI is not built (make ui)"
    if missing:
        if os.environ.get("RUNSTREAM_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with the demo's 4 runs (scalars with spikes, histograms, images)."""
    server = ServerProcess(Path(tmp_path_factory.mktemp("browser")) / "data").start()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "runstream_service",
            "demo",
            "--server",
            server.address,
            "--steps",
            "1500",
            "--rate",
            "0",
        ],
        check=True,
        timeout=120,
    )
    yield server
    server.stop()


@pytest.fixture
def page(browser: object, demo_server: ServerProcess) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
