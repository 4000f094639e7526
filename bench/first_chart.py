"""Time from navigation to the first charts drawn, in headless Chromium, for a big project.

Data: 20 runs x 20 tags x 100,000 steps (40M points), logged through the SDK by 4 processes into
a real server. Then Debian's Chromium (driven by Playwright) opens the dashboard on that project
with every run selected; the page records `performance.now()` when its first charts have drawn
(`window.__runstream.firstChartsAt`, measured from the start of navigation). Median of --repeat
fresh page loads (new browser context each time: no cache).

    python bench/first_chart.py [--runs 20] [--tags 20] [--steps 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import time

from _harness import Server, emit

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def log_runs(address: str, first: int, count: int, tags: int, steps: int) -> None:
    import numpy as np

    import runstream

    runs = [
        runstream.init(project="first-chart", name=f"run-{i:02d}", config={"seed": i}, server=address)
        for i in range(first, first + count)
    ]
    names = [f"group{t // 5}/metric{t}" for t in range(tags)]
    rng = np.random.default_rng(first)
    base = rng.standard_normal((count, tags)).tolist()
    for step in range(steps):
        decay = 1.0 / (1.0 + step / 1000.0)
        for run, offsets in zip(runs, base, strict=True):
            run.log({name: decay + 0.1 * offset for name, offset in zip(names, offsets, strict=True)}, step=step)
    for run in runs:
        report = run.finish(timeout=600)
        assert report.complete, report


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
        started = time.monotonic()
        ctx = multiprocessing.get_context("spawn")
        writers = 4
        share = [args.runs // writers + (1 if i < args.runs % writers else 0) for i in range(writers)]
        firsts = [sum(share[:i]) for i in range(writers)]
        procs = [
            ctx.Process(target=log_runs, args=(server.address, first, n, args.tags, args.steps))
            for first, n in zip(firsts, share, strict=True)
            if n
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit("a writer failed")
        points = args.runs * args.tags * args.steps
        print(f"logged {points:,} points in {time.monotonic() - started:.1f}s")

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
