"""Time from navigation to the first charts drawn, in headless Chromium, for a big project.

Data: 20 runs x 20 tags x 100,000 steps (40M points), sent over gRPC as SDK clients send them, by
4 processes (bench/dataset.py), into a real server, which is left to compact them (/healthz polled
until nothing waits, as in bench/timeseries.py). Then Debian's Chromium (driven by Playwright)
opens the dashboard on that project with every run selected; the page records `performance.now()`
when its first charts have drawn (`window.__runstream.firstChartsAt`, measured from the start of
navigation). Median of --repeat fresh page loads (new browser context each time: no cache).

    python bench/first_chart.py [--runs 20] [--tags 20] [--steps 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics

from _harness import Server, emit, settle
from dataset import log_scalars

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def seed_config(run: int) -> dict[str, int]:
    return {"seed": run}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's Chromium: apt-get install chromium")

    with Server() as server:
        data = log_scalars(
            server.address, args.runs, args.tags, args.steps, project="first-chart", writers=4, config=seed_config
        )
        points = data.points
        settle_s = settle(server, 900)[0]  # charts of compacted points, as a server shows them once settled
        print(f"logged {points:,} points in {data.seconds:.1f}s, compacted {settle_s:.1f}s later")

        from playwright.sync_api import sync_playwright

        url = f"http://127.0.0.1:{server.http_port}/?project=first-chart"
        times, drawn = [], 0
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for _ in range(args.repeat + 1):  # the first load warms the server's caches
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.goto(url)
                page.wait_for_function("window.__runstream && window.__runstream.firstChartsAt", timeout=60_000)
                times.append(page.evaluate("window.__runstream.firstChartsAt") / 1000.0)
                drawn = page.evaluate("window.__runstream.chartsDrawn")
                legend = page.locator("[data-testid=chart-legend]").first.inner_text()
                context.close()
            browser.close()
        times = times[1:]
    first = statistics.median(times)
    print(f"first charts drawn after {first * 1e3:.0f} ms (median of {args.repeat}); {drawn} charts; loads {times}")
    emit(
        "first_chart",
        first * 1e3,
        "ms",
        runs=args.runs,
        tags=args.tags,
        steps=args.steps,
        points=points,
        charts_drawn=drawn,
        legend_runs=legend.count("run-"),
        loads_ms=[round(t * 1e3) for t in times],
        goal_ms=1500,
        goal_met=first <= 1.5,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
