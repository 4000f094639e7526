"""The HPARAMS tab over a sweep: 500 runs x 20 hyperparameters x 5 metrics logged into a real server.

Each run is `runstream.init(config={"hparams": {20 values}, "seed": ...})` logging 5 metrics for 50 steps
(the table shows each metric's last value by step). `value` is the HPARAMS view's first draw in
headless Chromium, in ms from the start of navigation to `?tab=hparams` until the frame showing the
parallel coordinates, the scatter and the table's first rows is out (the other rows follow in chunks;
window.__runstream.hparams.drawnAt; goal <= 1,000;
the median of 3 fresh page loads after a warm-up). `api_ms`: the median time of
the one GET /api/hparams that the view sends, over HTTP from this process; `answer_kb` its size.

    python bench/hparams.py [--runs 500] [--steps 50]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _harness import Server, emit

import runstream

HPARAMS = 20
METRICS = ("accuracy", "loss", "val_accuracy", "val_loss", "f1")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def sweep_config(i: int, rng: random.Random) -> dict[str, object]:
    """20 hyperparameters of the usual kinds: log-spaced rates, integers, choices and flags."""
    hparams: dict[str, object] = {}
    for k in range(HPARAMS):
        kind = k % 4
        if kind == 0:
            hparams[f"lr_{k}"] = 10 ** rng.uniform(-5, -1)
        elif kind == 1:
            hparams[f"layers_{k}"] = rng.choice((2, 4, 8, 16))
        elif kind == 2:
            hparams[f"optimizer_{k}"] = rng.choice(("sgd", "adam", "adamw", "rmsprop"))
        else:
            hparams[f"dropout_{k}"] = round(rng.uniform(0, 0.5), 3)
    return {"hparams": hparams, "seed": i}


def log_sweep(server: Server, runs: int, steps: int) -> None:
    rng = random.Random(0)
    for i in range(runs):
        with runstream.init(
            project="bench", name=f"sweep-{i:03d}", config=sweep_config(i, rng), server=server.address
        ) as run:
            quality = rng.random()
            for step in range(steps):
                progress = (step + 1) / steps
                run.log({name: quality * progress + rng.random() * 0.01 for name in METRICS}, step=step)


def api_ms(server: Server, repeat: int = 5) -> tuple[float, int]:
    url = f"{server.http_url}/api/hparams?project=bench"
    times, size = [], 0
    for _ in range(repeat + 1):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as reply:
            size = len(reply.read())
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[1:]), size


def first_draw_ms(server: Server, runs: int) -> float:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("this benchmark draws the view in Chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    drawn = f"window.__runstream?.hparams?.drawnAt != null && window.__runstream.hparams.rows === {runs}"
    firsts = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for _ in range(4):  # the first load warms the server's caches and the browser's
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{server.http_url}/?project=bench&tab=hparams")
            page.wait_for_function(drawn, timeout=60_000)
            firsts.append(page.evaluate("window.__runstream.hparams.drawnAt"))
            context.close()
        browser.close()
    return statistics.median(firsts[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    with Server() as server:
        start = time.perf_counter()
        log_sweep(server, args.runs, args.steps)
        server.wait_committed(args.runs * args.steps * len(METRICS))
        print(f"logged {args.runs} runs in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        api, size = api_ms(server)
        draw = first_draw_ms(server, args.runs)
    emit(
        "hparams_first_draw",
        draw,
        "ms",
        runs=args.runs,
        hparams=HPARAMS,
        metrics=len(METRICS),
        api_ms=api,
        answer_kb=size / 1024,
    )


if __name__ == "__main__":
    main()
