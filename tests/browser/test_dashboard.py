"""The dashboard in headless Chromium: runs, charts, zoom, smoothing, group-by, histograms, images, SQL, live updates.

Screenshots of the main views go to test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import runstream
from support import ServerProcess

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOSS_LEGEND = "document.querySelector(\"[data-testid=chart][data-tag='train/loss'] [data-testid=chart-legend]\")"

COLOURED_PIXELS = """(element) => {
    const canvas = element.querySelector('canvas');
    if (!canvas || !canvas.width) return 0;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let coloured = 0;
    for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;  // a run's colour, not grey
    }
    return coloured;
}"""


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_dashboard(page: Any, server: ServerProcess, query: str = "") -> None:
    page.goto(f"http://127.0.0.1:{server.http_port}/{query}")
    page.wait_for_selector("[data-testid=run-row]")
    page.wait_for_function("window.__runstream && window.__runstream.chartsDrawn > 0", timeout=15_000)


def chart(page: Any, tag: str) -> Any:
    return page.locator(f"[data-testid=chart][data-tag='{tag}']")


def test_charts_are_drawn_for_the_selected_runs(page: Any, demo_server: ServerProcess) -> None:
    open_dashboard(page, demo_server, "?project=demo")
    rows = page.locator("[data-testid=run-row]")
    assert rows.count() == 4
    names = [rows.nth(i).locator("td.c-name").inner_text().strip() for i in range(4)]
    assert all(names), names
    loss = chart(page, "train/loss")
    loss.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.querySelector('canvas')", arg=loss.element_handle(), timeout=10_000)
    assert loss.evaluate(COLOURED_PIXELS) > 500, "the train/loss chart is blank"
    legend = loss.locator("[data-testid=chart-legend]").inner_text()
    assert all(name in legend for name in names), legend
    screenshot(page, "scalars")

    # Select two runs only: the legend follows.
    page.get_by_text("none", exact=True).click()
    rows.nth(0).locator("[data-testid=run-checkbox]").check()
    rows.nth(2).locator("[data-testid=run-checkbox]").check()
    page.wait_for_function(
        f"(names) => {{ const l = {LOSS_LEGEND};"
        " return l && names.slice(0, 2).every(n => l.innerText.includes(n)) && !l.innerText.includes(names[2]); }",
        arg=[names[0], names[2], names[1]],
        timeout=10_000,
    )
    assert "runs=" in page.url  # the view is in the URL


def test_drag_to_zoom_asks_the_server_again(page: Any, demo_server: ServerProcess) -> None:
    open_dashboard(page, demo_server, "?project=demo")
    loss = chart(page, "train/loss")
    loss.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.querySelector('.u-over')", arg=loss.element_handle(), timeout=10_000)
    before = page.evaluate("window.__runstream.fetches")
    box = loss.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    page.mouse.up()
    page.wait_for_function(f"window.__runstream.fetches > {before}", timeout=10_000)
    query = page.evaluate("window.__runstream.lastScalarQuery")
    assert query["tag"] == "train/loss" and query["x_min"] is not None and query["x_max"] > query["x_min"]
    assert 300 < query["x_min"] < 600 and 600 < query["x_max"] < 900  # 30% .. 50% of 1,500 steps
    screenshot(page, "scalars-zoomed")


def test_smoothing_redraws_the_chart(page: Any, demo_server: ServerProcess) -> None:
    open_dashboard(page, demo_server, "?project=demo")
    loss = chart(page, "train/loss")
    loss.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.querySelector('canvas')", arg=loss.element_handle(), timeout=10_000)
    picture = "(el) => el.querySelector('canvas').toDataURL()"
    before = loss.evaluate(picture)
    page.locator("[data-testid=smoothing]").fill("0.95")
    page.wait_for_function(
        "([el, before]) => el.querySelector('canvas').toDataURL() !== before",
        arg=[loss.element_handle(), before],
        timeout=10_000,
    )
    assert "smoothing=0.95" in page.url


BAND_KEYS = ("band_x", "band_min", "band_max")
DRAWN_SERIES = "(el) => el.__chart && el.__chart.u ? el.__chart.u.series.length : 0"


def test_the_envelope_is_asked_for_only_while_it_is_shown(page: Any, demo_server: ServerProcess) -> None:
    """/api/scalars sends band_x/band_min/band_max only with bands=1, which the envelope checkbox adds and removes."""

    def for_loss(response: Any) -> bool:
        return "/api/scalars?" in response.url and "tag=train%2Floss" in response.url

    def query_of(response: Any) -> dict[str, list[str]]:
        return parse_qs(urlsplit(response.url).query)

    loss = chart(page, "train/loss")
    with page.expect_response(for_loss, timeout=15_000) as first:
        open_dashboard(page, demo_server, "?project=demo")
        loss.scroll_into_view_if_needed()
    assert first.value.status == 200, first.value.text()
    assert "bands" not in query_of(first.value), first.value.url
    plain = first.value.json()["series"]
    assert len(plain) >= 4 and all(s["x"] for s in plain)
    assert not [key for s in plain for key in BAND_KEYS if key in s], "the envelope came without bands=1"
    envelope = page.locator("[data-testid=envelope]")
    assert not envelope.is_checked() and envelope.is_enabled()
    page.wait_for_function(f"(el) => ({DRAWN_SERIES})(el) > 1", arg=loss.element_handle(), timeout=10_000)
    lines_only = loss.evaluate(DRAWN_SERIES)

    # checked: the chart asks again, with bands=1, and draws a band (two more series) per run
    with page.expect_response(for_loss, timeout=15_000) as with_bands:
        envelope.check()
    assert with_bands.value.status == 200, with_bands.value.text()
    query = query_of(with_bands.value)
    assert query.get("bands") == ["1"], with_bands.value.url
    assert query["width"] == query_of(first.value)["width"]
    banded = with_bands.value.json()["series"]
    assert sorted(s["run_id"] for s in banded) == sorted(s["run_id"] for s in plain)
    for s in banded:
        assert s["band_x"] and len(s["band_x"]) == len(s["band_min"]) == len(s["band_max"]), s["run_id"]
        assert all(lo <= hi for lo, hi in zip(s["band_min"], s["band_max"]) if lo is not None and hi is not None)
    by_run = {s["run_id"]: s for s in plain}
    assert all(s["x"] == by_run[s["run_id"]]["x"] and s["y"] == by_run[s["run_id"]]["y"] for s in banded)
    assert "envelope=1" in page.url
    page.wait_for_function(
        "([el, n]) => el.__chart.u && el.__chart.u.series.length === n",
        arg=[loss.element_handle(), lines_only + 2 * len(banded)],
        timeout=10_000,
    )
    screenshot(page, "scalars-envelope")

    # unchecked: asked again without it
    with page.expect_response(for_loss, timeout=15_000) as without:
        envelope.uncheck()
    assert without.value.status == 200, without.value.text()
    assert "bands" not in query_of(without.value), without.value.url
    assert not [key for s in without.value.json()["series"] for key in BAND_KEYS if key in s]
    assert "envelope=1" not in page.url
    page.wait_for_function(
        "([el, n]) => el.__chart.u && el.__chart.u.series.length === n",
        arg=[loss.element_handle(), lines_only],
        timeout=10_000,
    )


GROUPS_REQUEST = "/api/scalar_groups?"
CHART_ITEMS = "(el) => el.__chart ? el.__chart.items.map(i => ({label: i.label, x: i.x, raw: i.raw})) : []"


def drag_across(page: Any, plot: Any, start: float, end: float) -> None:
    """Drag the mouse over a chart's plot from `start` to `end` (fractions of its width)."""
    box = plot.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    page.mouse.up()


def test_group_by_draws_the_groups_the_server_aggregated(page: Any, demo_server: ServerProcess) -> None:
    scalar_requests: list[str] = []
    page.on("request", lambda request: "/api/scalar" in request.url and scalar_requests.append(request.url))
    open_dashboard(page, demo_server, "?project=demo&smoothing=0")
    loss = chart(page, "train/loss")
    loss.scroll_into_view_if_needed()
    page.wait_for_function("(el) => el.querySelector('canvas')", arg=loss.element_handle(), timeout=10_000)
    scalar_requests.clear()

    def for_loss(response: Any) -> bool:
        return GROUPS_REQUEST in response.url and "tag=train%2Floss" in response.url

    with page.expect_response(for_loss, timeout=15_000) as answer:
        page.locator("[data-testid=group-by]").select_option("lr")
    assert answer.value.status == 200, answer.value.text()
    assert "group_by=lr" in answer.value.url and "x=step" in answer.value.url and "width=" in answer.value.url
    body = answer.value.json()
    labels = [group["label"] for group in body["groups"]]
    # the demo's learning rates are 3e-4 * 2 ** (i % 3) for its 4 runs: 3 groups, one of two runs
    assert {"0.0003", "0.0006", "0.0012"} <= set(labels), labels
    assert sorted(len(group["runs"]) for group in body["groups"] if group["label"] != "(none)") == [1, 1, 2]

    # one legend entry per group, and the lines are the server's means (no smoothing here)
    legend = loss.locator("[data-testid=chart-legend] .legend-label")
    page.wait_for_function(
        "([el, n]) => el.querySelectorAll('.legend-label').length === n",
        arg=[loss.element_handle(), len(labels)],
        timeout=10_000,
    )
    assert sorted(legend.all_inner_texts()) == sorted(
        f"lr={group['label']} ({len(group['runs'])})" for group in body["groups"]
    )
    drawn = {item["label"]: item for item in loss.evaluate(CHART_ITEMS)}
    for group in body["groups"]:
        item = drawn[f"lr={group['label']}"]
        assert item["x"] == group["x"] and item["raw"] == group["mean"]
    ungrouped = [url for url in scalar_requests if "/api/scalars?" in url and "tag=train%2Floss" in url]
    assert not ungrouped, "the grouped chart asked for the runs' series"
    assert loss.evaluate(COLOURED_PIXELS) > 500, "the grouped train/loss chart is blank"
    screenshot(page, "scalars-grouped")

    # zoom: the server aggregates the zoomed range
    with page.expect_response(lambda r: for_loss(r) and "x_min=" in r.url, timeout=15_000) as zoomed:
        drag_across(page, loss, 0.3, 0.5)
    assert zoomed.value.status == 200
    query = {key: values[0] for key, values in parse_qs(urlsplit(zoomed.value.url).query).items()}
    x_min, x_max = float(query["x_min"]), float(query["x_max"])
    assert query["group_by"] == "lr" and 300 < x_min < 600 and 600 < x_max < 900  # 30% .. 50% of 1,500 steps
    xs = [x for group in zoomed.value.json()["groups"] for x in group["x"]]
    assert xs and x_min <= min(xs) and max(xs) <= x_max, (min(xs), max(xs), query)
    page.wait_for_function(
        "([el, lo]) => el.__chart.items.length && el.__chart.items.every(i => i.x[0] >= lo)",
        arg=[loss.element_handle(), x_min],
        timeout=10_000,
    )
    screenshot(page, "scalars-grouped-zoomed")

    # ungrouped again: the runs' own series
    with page.expect_response(lambda r: "/api/scalars?" in r.url and "tag=train%2Floss" in r.url, timeout=15_000):
        page.locator("[data-testid=group-by]").select_option("")


def test_a_grouped_chart_follows_a_running_run(page: Any, tmp_path: Path) -> None:
    """Runs with known values: the server's mean, std, min and max reach the chart, and live data too.

    On a server of its own: the other tests count the runs of the shared one.
    """
    server = ServerProcess(tmp_path / "data").start()
    try:
        check_a_grouped_chart_follows_a_running_run(page, server)
    finally:
        server.stop()


def check_a_grouped_chart_follows_a_running_run(page: Any, server: ServerProcess) -> None:
    finished = []
    for name, offset in (("a", 0.0), ("b", 2.0), ("d", 4.0)):
        with runstream.init(project="groups", name=name, config={"lr": 0.1}, server=server.address) as run:
            for step in range(50):
                run.log({"loss": step + offset}, step=step)
        finished.append(run.id)
    running = runstream.init(project="groups", name="c", config={"lr": 0.2}, server=server.address)
    try:
        for step in range(50):
            running.log({"loss": 100.0}, step=step)
        running.flush()
        with page.expect_response(lambda r: GROUPS_REQUEST in r.url, timeout=15_000) as answer:
            open_dashboard(page, server, "?project=groups&group=lr&smoothing=0")
        groups = {group["label"]: group for group in answer.value.json()["groups"]}
        assert sorted(groups) == ["0.1", "0.2"]
        three = groups["0.1"]
        assert sorted(three["runs"]) == sorted(finished)
        assert three["x"] == sorted(three["x"]) and len(three["x"]) > 10
        for i in range(len(three["x"])):  # x, x + 2 and x + 4 (x: the runs' mean step in the column)
            assert three["count"][i] == 3
            assert abs(three["max"][i] - three["min"][i] - 4) < 1e-6
            assert abs(three["mean"][i] - (three["min"][i] + 2)) < 1e-6
            assert abs(three["std"][i] - (8 / 3) ** 0.5) < 1e-6
        assert set(groups["0.2"]["mean"]) == {100.0} and set(groups["0.2"]["std"]) == {0.0}

        loss = chart(page, "loss")
        page.wait_for_function(
            "(el) => el.__chart && el.__chart.items.length === 2", arg=loss.element_handle(), timeout=10_000
        )
        assert loss.locator(".legend-label").all_inner_texts() == ["lr=0.1 (3)", "lr=0.2 (1)"]
        assert loss.evaluate(COLOURED_PIXELS) > 300, "the grouped chart is blank"

        # the band is drawn from the same answer: switching to mean ± std (narrower here) asks nothing
        fetches = page.evaluate("window.__runstream.fetches")
        picture = "(el) => el.querySelector('canvas').toDataURL()"
        before = loss.evaluate(picture)
        page.locator("[data-testid=group-band]").select_option("std")
        page.wait_for_function(
            "([el, before]) => el.querySelector('canvas').toDataURL() !== before",
            arg=[loss.element_handle(), before],
            timeout=10_000,
        )
        assert page.evaluate("window.__runstream.fetches") == fetches
        screenshot(page, "scalars-grouped-std")

        last_x = "(el) => Math.max(...el.__chart.items.find(i => i.label === 'lr=0.2').x)"
        assert loss.evaluate(last_x) < 50
        for step in range(50, 100):
            running.log({"loss": 100.0}, step=step)
        running.flush()
        page.wait_for_function(f"(el) => ({last_x})(el) >= 90", arg=loss.element_handle(), timeout=15_000)
        assert page.evaluate("window.__runstream.lastScalarQuery")["group_by"] == "lr"
        screenshot(page, "scalars-grouped-live")
    finally:
        running.finish()


def test_histograms_view(page: Any, demo_server: ServerProcess) -> None:
    open_dashboard(page, demo_server, "?project=demo")
    page.locator("[data-testid=tab-histograms]").click()
    offset = page.locator("[data-testid=histogram-offset]").first
    distribution = page.locator("[data-testid=histogram-distribution]").first
    offset.wait_for(timeout=15_000)
    distribution.wait_for(timeout=15_000)
    offset_pixels = COLOURED_PIXELS.replace(
        "element.querySelector('canvas')",
        "(element.tagName === 'CANVAS' ? element : element.querySelector('canvas'))",
    )
    # Both charts are drawn: wait until each shows a run's colour rather than for a fixed time.
    for chart, coloured in ((offset, offset_pixels), (distribution, COLOURED_PIXELS)):
        page.wait_for_function(f"(el) => ({coloured})(el) > 200", arg=chart.element_handle(), timeout=10_000)
    screenshot(page, "histograms")


def test_images_with_a_step_slider(page: Any, demo_server: ServerProcess) -> None:
    open_dashboard(page, demo_server, "?project=demo")
    page.locator("[data-testid=tab-images]").click()
    image = page.locator("[data-testid=image]").first
    image.wait_for(timeout=15_000)
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 64", arg=image.element_handle(), timeout=10_000
    )
    newest = image.get_attribute("src")
    assert "step=1250" in newest  # the slider starts at the newest image (every 250 steps of 1,500)
    slider = page.locator("[data-testid=image-slider]").first
    slider.evaluate("(s) => { s.value = s.min; s.dispatchEvent(new Event('input', {bubbles: true})); }")
    page.wait_for_function("([img, src]) => img.getAttribute('src') !== src", arg=[image.element_handle(), newest])
    assert "step=0&" in image.get_attribute("src")
    screenshot(page, "images")


def test_sql_console(page: Any, demo_server: ServerProcess) -> None:
    open_dashboard(page, demo_server, "?project=demo")
    page.locator("[data-testid=tab-sql]").click()
    active_tabs = page.locator(".tabs button.active")
    assert active_tabs.count() == 1 and active_tabs.inner_text() == "SQL"
    assert "4 scalar, 1 histogram, 1 image tags" in page.locator("#status-counts").inner_text()
    page.locator("[data-testid=sql-input]").fill(
        "SELECT name, count(*) AS points FROM scalars JOIN runs USING (run_id) GROUP BY name ORDER BY name"
    )
    page.locator("[data-testid=sql-run]").click()
    results = page.locator("[data-testid=sql-results]")
    page.wait_for_function(
        "(el) => el.querySelectorAll('tbody tr').length === 4", arg=results.element_handle(), timeout=10_000
    )
    assert "6000" in results.inner_text()  # 1,500 steps x 4 tags per run
    with page.expect_download() as download:
        page.locator("[data-testid=sql-csv]").click()
    assert download.value.suggested_filename.endswith(".csv")
    screenshot(page, "sql")
    page.locator("[data-testid=sql-input]").fill("DELETE FROM runs")
    page.locator("[data-testid=sql-run]").click()
    error = page.locator("[data-testid=sql-error]")
    error.wait_for(timeout=10_000)
    assert "SELECT" in error.inner_text() or "read" in error.inner_text().lower()


def test_a_running_run_updates_live(page: Any, demo_server: ServerProcess) -> None:
    open_dashboard(page, demo_server, "?project=demo")
    run = runstream.init(project="demo", name="live-run", server=demo_server.address)
    try:
        run.log({"train/loss": 1.0}, step=0)
        run.flush()
        row = page.locator("[data-testid=run-row][data-run-id='" + run.id + "']")
        row.wait_for(timeout=15_000)  # the runs table refreshed by itself
        assert "live-run" in row.inner_text()
        before = page.evaluate("window.__runstream.fetches")
        for step in range(1, 50):
            run.log({"train/loss": 1.0 / step}, step=step)
        run.flush()
        page.wait_for_function(f"window.__runstream.fetches > {before}", timeout=15_000)
        screenshot(page, "live")
    finally:
        run.finish()


def test_texts_tab(page: Any, demo_server: ServerProcess) -> None:
    import runstream

    with runstream.init(project="texts", name="notes", server=demo_server.address) as run:
        run.log({"x": 1.0}, step=0)
        run.log_text("notes/summary", "first note", step=0)
        run.log_text("notes/summary", "second **note**\nwith two lines", step=1)
    open_dashboard(page, demo_server, "?project=texts")
    page.locator("[data-testid=tab-texts]").click()
    items = page.locator("[data-testid=text-item]")
    items.first.wait_for(timeout=15_000)
    assert items.count() == 2
    assert "second note" in items.first.inner_text()  # newest first, as Markdown
    assert items.first.locator("strong").inner_text() == "note"
    screenshot(page, "texts")
