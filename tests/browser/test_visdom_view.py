"""The Visdom tab in headless Chromium, fed by the unchanged visdom 0.2.4 client through a real server.

The seed's calls (and the other pane types) go to the server's Visdom listener; the page must draw
each pane as Visdom does (Plotly, images with their history slider, text), keep logged HTML from
running, follow appends live and draw a 1M-point line with its spike. Screenshots go to
test-artifacts/visdom*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support import ServerProcess, free_port

visdom = pytest.importorskip("visdom")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 30_000
BIG_POINTS = 1_000_000
SPIKE_AT, SPIKE = 733_333, 100.0

# Each would set window.__pwned if the page let it run.
EVIL_HTML = (
    "<b>evil</b><script>window.__pwned = 'script'</script>"
    '<img src="data:image/png;base64,bm9wZQ==" onerror="window.__pwned = \'onerror\'">'
    '<a id="jslink" href="javascript:window.__pwned = \'href\'">click me</a>'
)
EVIL_SVG = (
    '<svg height="100" width="100"><circle id="evilcircle" cx="50" cy="50" r="40" fill="red" '
    "onclick=\"window.__pwned = 'svg'\"/><script>window.__pwned = 'svg-script'</script></svg>"
)
PLOTS = [
    "line",
    "scatter",
    "stem",
    "heatmap",
    "bar",
    "histogram",
    "boxplot",
    "surf",
    "contour",
    "quiver",
    "mesh",
    "pie",
]
PLOTS_3D = ["surf", "mesh"]
IMAGES = ["image", "history", "images"]
TEXTS = {"text": "Hello, world! and more", "evil": "evil", "svg": ""}

PANE = "[data-testid=visdom-pane][data-win='{}']"


def seed(vis: Any, env: str = "main") -> None:
    """The seed's Visdom calls, one window each, plus a few more pane types."""
    rng = np.random.default_rng(0)
    steps = np.arange(10)
    vis.line(
        X=steps,
        Y=np.sin(steps / 3),
        win="line",
        env=env,
        opts={
            "title": "line",
            "xlabel": "step",
            "ylabel": "loss",
            "layoutopts": {"plotly": {"titlefont": {"size": 20}}},
        },
    )
    for step in range(10, 20):
        vis.line(X=np.array([step]), Y=np.array([np.sin(step / 3)]), win="line", env=env, update="append")
    vis.scatter(
        X=rng.random((50, 2)),
        Y=rng.integers(1, 3, 50),
        win="scatter",
        env=env,
        opts={"title": "scatter", "legend": ["a", "b"], "markersize": 6},
    )
    vis.stem(X=np.sin(np.linspace(0, 6, 30)), Y=np.linspace(0, 6, 30), win="stem", env=env, opts={"title": "stem"})
    vis.heatmap(
        X=np.outer(np.arange(1, 6), np.arange(1, 11)),
        win="heatmap",
        env=env,
        opts={"title": "heatmap", "colormap": "Viridis"},
    )
    vis.bar(X=rng.random(10), win="bar", env=env, opts={"title": "bar"})
    vis.histogram(X=rng.random(1000), win="histogram", env=env, opts={"title": "histogram", "numbins": 20})
    vis.boxplot(X=rng.random((100, 2)), win="boxplot", env=env, opts={"title": "boxplot", "legend": ["men", "women"]})
    grid = np.tile(np.arange(1, 21), (20, 1))
    bump = np.exp(-((grid - 10) ** 2 + (grid.T - 10) ** 2) / 20)
    vis.surf(X=bump, win="surf", env=env, opts={"title": "surf", "colormap": "Hot"})
    vis.contour(X=bump, win="contour", env=env, opts={"title": "contour"})
    xx, yy = np.meshgrid(np.arange(0, 2, 0.2), np.arange(0, 2, 0.2))
    vis.quiver(X=np.cos(xx) * yy, Y=np.sin(xx) * yy, win="quiver", env=env, opts={"title": "quiver"})
    vis.image(
        (rng.random((3, 64, 64)) * 255).astype("uint8"),
        win="image",
        env=env,
        opts={"title": "image", "caption": "noise"},
    )
    for k in range(3):
        frame = np.zeros((3, 32, 48), dtype="uint8")
        frame[k] = 200  # red, green, blue
        vis.image(
            frame, win="history", env=env, opts={"title": "history", "store_history": True, "caption": f"frame {k}"}
        )
    vis.images(rng.random((8, 3, 16, 16)), nrow=4, win="images", env=env, opts={"title": "images"})
    vis.text("Hello, <i>world</i>!", win="text", env=env, opts={"title": "text"})
    vis.text(" and more", win="text", env=env, append=True)
    vis.text(EVIL_HTML, win="evil", env=env, opts={"title": "evil"})
    vis.svg(svgstr=EVIL_SVG, win="svg", env=env, opts={"title": "svg"})
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    vis.mesh(X=vertices, Y=faces, win="mesh", env=env, opts={"title": "mesh", "opacity": 0.5})
    vis.pie(X=np.array([19, 26, 55]), win="pie", env=env, opts={"title": "pie", "legend": ["a", "b", "c"]})
    vis.properties(
        [{"type": "text", "name": "lr", "value": "0.1"}], win="properties", env=env, opts={"title": "properties"}
    )


def big_line(vis: Any, env: str) -> None:
    """A 1M-point line made by appends, with one spike far from the ends."""
    rng = np.random.default_rng(1)
    half = BIG_POINTS // 2
    y = rng.random(BIG_POINTS)
    y[SPIKE_AT] = SPIKE
    vis.line(X=np.arange(half), Y=y[:half], win="big", env=env, opts={"title": "1M points", "width": 900})
    vis.line(X=np.arange(half, BIG_POINTS - 10), Y=y[half:-10], win="big", env=env, update="append")
    for i in range(BIG_POINTS - 10, BIG_POINTS):
        vis.line(X=np.array([i]), Y=y[i : i + 1], win="big", env=env, update="append")


@pytest.fixture(scope="module")
def visdom_server(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[tuple[ServerProcess, Any]]:
    """A server with the Visdom listener on a free port; the seed in `main` and `exp_a`, envs `exp_b`, `zeta_1`."""
    port = free_port()
    server = ServerProcess(Path(tmp_path_factory.mktemp("visdom")) / "data", ("--visdom", f"127.0.0.1:{port}")).start()
    vis = visdom.Visdom(server="http://127.0.0.1", port=port, raise_exceptions=True, use_incoming_socket=False)
    assert vis.check_connection(timeout_seconds=10)
    seed(vis, "main")
    seed(vis, "exp_a")
    vis.text("b", win="t", env="exp_b")
    big_line(vis, "zeta_1")
    yield server, vis
    server.stop()


@pytest.fixture
def vpage(browser: Any, visdom_server: tuple[ServerProcess, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_env(page: Any, server: ServerProcess, env: str, wins: int) -> None:
    page.goto(f"http://127.0.0.1:{server.http_port}/?tab=visdom&env={env}")
    try:
        page.wait_for_function(
            "(n) => { const v = window.__runstream && window.__runstream.visdom;"
            " return v && v.envsLoaded > 0 && document.querySelectorAll('[data-testid=visdom-pane]').length === n; }",
            arg=wins,
            timeout=TIMEOUT_MS,
        )
    except Exception as error:
        state = page.evaluate(
            "() => [document.querySelectorAll('[data-testid=visdom-pane]').length, JSON.stringify(window.__runstream)]"
        )
        raise AssertionError(f"{env}: expected {wins} panes; the page has {state}") from error


def screenshot(page: Any, name: str, full: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full)


GRAPH_DIV = "(sel) => document.querySelector(sel + ' .vd-body')"
FIGURE = (
    f"(sel) => {{ const gd = ({GRAPH_DIV})(sel);"
    " return gd && gd.data ? gd.data.map((t) => ({x: t.x, y: t.y})) : null; }"
)


def figure(page: Any, win: str) -> Any:
    """The plotly.js graph div's traces as drawn (gd.data: x and y), or None."""
    return page.evaluate(FIGURE, PANE.format(win))


def test_every_pane_type_renders(vpage: Any, visdom_server: tuple[ServerProcess, Any]) -> None:
    server, _ = visdom_server
    open_env(vpage, server, "main", len(PLOTS) + len(IMAGES) + len(TEXTS) + 1)
    order = vpage.eval_on_selector_all("[data-testid=visdom-pane]", "(els) => els.map((e) => e.dataset.win)")
    assert order[:3] == ["line", "scatter", "stem"], order  # the client's order
    for win in PLOTS:
        pane = vpage.locator(PANE.format(win))
        pane.scroll_into_view_if_needed()
        pane.locator(".main-svg").first.wait_for(timeout=TIMEOUT_MS)
        if win in PLOTS_3D:
            assert pane.locator("canvas").count() > 0, win
        assert pane.locator(".vd-title").inner_text() == win
        assert "could not" not in pane.locator(".vd-note").inner_text(), win
    # Visdom's string titles reach the plot (plotly.js draws only title.text now)
    line = vpage.locator(PANE.format("line"))
    assert line.locator(".gtitle").text_content() == "line"
    assert line.locator(".xtitle").text_content() == "step"
    assert line.locator(".gtitle").evaluate("(el) => getComputedStyle(el).fontSize") == "20px"  # titlefont
    assert len(figure(vpage, "line")[0]["x"]) == 20  # 10 points and 10 appends
    for win in IMAGES:
        image = vpage.locator(f"{PANE.format(win)} [data-testid=visdom-image]")
        image.scroll_into_view_if_needed()
        vpage.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=TIMEOUT_MS
        )
    text = vpage.locator(f"{PANE.format('text')} [data-testid=visdom-text] .vd-content")  # in its shadow root
    assert " ".join(text.inner_text().split()) == TEXTS["text"]  # appended after a <br>, as Visdom does
    props = vpage.locator(PANE.format("properties")).inner_text()
    assert "lr" in props and "0.1" in props
    screenshot(vpage, "visdom")
    vpage.set_viewport_size({"width": 1400, "height": 2400})
    screenshot(vpage, "visdom-all", full=True)


def test_the_env_selector_groups_by_prefix(vpage: Any, visdom_server: tuple[ServerProcess, Any]) -> None:
    server, _ = visdom_server
    open_env(vpage, server, "exp_b", 1)
    groups = vpage.eval_on_selector_all(
        "[data-testid=visdom-env] optgroup",
        "(gs) => gs.map((g) => [g.label, [...g.querySelectorAll('option')].map((o) => o.value)])",
    )
    assert groups == [["exp", ["exp_a", "exp_b"]], ["main", ["main"]], ["zeta", ["zeta_1"]]]
    vpage.select_option("[data-testid=visdom-env]", "exp_a")
    vpage.wait_for_selector(PANE.format("heatmap"), timeout=TIMEOUT_MS)
    assert "env=exp_a" in vpage.url


def test_image_history_has_its_slider(vpage: Any, visdom_server: tuple[ServerProcess, Any]) -> None:
    server, _ = visdom_server
    open_env(vpage, server, "main", len(PLOTS) + len(IMAGES) + len(TEXTS) + 1)
    pane = vpage.locator(PANE.format("history"))
    pane.scroll_into_view_if_needed()
    slider = pane.locator("[data-testid=visdom-image-slider]")
    assert slider.get_attribute("max") == "2" and slider.input_value() == "2"
    assert "frame 2" in pane.inner_text()
    newest = pane.locator("[data-testid=visdom-image]").get_attribute("src")
    slider.fill("0")
    assert "frame 0" in pane.inner_text()
    assert pane.locator("[data-testid=visdom-image]").get_attribute("src") != newest
    assert vpage.locator(f"{PANE.format('image')} [data-testid=visdom-image-slider]").is_hidden()  # no history


def test_logged_html_does_not_run(vpage: Any, visdom_server: tuple[ServerProcess, Any]) -> None:
    server, _ = visdom_server
    open_env(vpage, server, "main", len(PLOTS) + len(IMAGES) + len(TEXTS) + 1)
    evil = vpage.locator(f"{PANE.format('evil')} [data-testid=visdom-text] .vd-content")
    evil.scroll_into_view_if_needed()
    assert evil.inner_text().startswith("evil")
    vpage.locator("#jslink").click()
    vpage.locator("#evilcircle").click()
    vpage.wait_for_function(  # the broken image has failed (its onerror would have run by now)
        "() => [...document.querySelectorAll('[data-testid=visdom-text]')]"
        ".every((h) => [...h.shadowRoot.querySelectorAll('img')].every((i) => i.complete))",
        timeout=TIMEOUT_MS,
    )
    assert vpage.evaluate("window.__pwned") is None
    counts = vpage.evaluate(
        "() => [...document.querySelectorAll('[data-testid=visdom-text]')].map((h) =>"
        " h.shadowRoot.querySelectorAll('script, [onerror], [onclick], [href^=javascript]').length)"
    )
    assert counts and not any(counts), counts


def test_appends_show_up_live(vpage: Any, visdom_server: tuple[ServerProcess, Any]) -> None:
    server, vis = visdom_server
    vis.line(X=np.arange(3), Y=np.arange(3.0), win="live", env="exp_b", opts={"title": "live"})
    open_env(vpage, server, "exp_b", 2)
    assert len(figure(vpage, "live")[0]["x"]) == 3
    for i in range(3, 8):
        vis.line(X=np.array([i]), Y=np.array([float(i)]), win="live", env="exp_b", update="append")
    vpage.wait_for_function(
        f"(sel) => {{ const gd = ({GRAPH_DIV})(sel); return gd && gd.data && gd.data[0].x.length === 8; }}",
        arg=PANE.format("live"),
        timeout=TIMEOUT_MS,
    )
    vis.text("new window", win="later", env="exp_b")
    vpage.wait_for_selector(PANE.format("later"), timeout=TIMEOUT_MS)


def test_a_million_point_line_draws_with_its_spike(vpage: Any, visdom_server: tuple[ServerProcess, Any]) -> None:
    server, _ = visdom_server
    open_env(vpage, server, "zeta_1", 1)
    pane = vpage.locator(PANE.format("big"))
    pane.locator(".main-svg").first.wait_for(timeout=TIMEOUT_MS)
    drawn = figure(vpage, "big")[0]
    assert 0 < len(drawn["x"]) <= 4 * 4000, len(drawn["x"])  # M4: about 4 points per pixel column
    assert max(drawn["y"]) == SPIKE and SPIKE_AT in drawn["x"]
    assert max(drawn["x"]) == BIG_POINTS - 1  # the last single append
    assert "1,000,000 points" in pane.locator(".vd-note").inner_text()
    screenshot(vpage, "visdom-1m")
