"""The unchanged visdom 0.2.4 client against runstream and, in the same run, against a real Visdom server.

Each server gets 3,000 single-point appends to a new line (`line(X=[i], Y=[y], win=w, update='append')`,
one call at a time, from this process). `value` is runstream's median milliseconds per append over the
last 1,000; `ratio` is Visdom's median over those same appends / runstream's (goal >= 20: Visdom rewrites
the whole window on every append, so its appends slow down as the line grows).

`flatness` is runstream's p99 over 1,000 single appends to a window already holding 1M points (loaded by
one `line` call) / its p99 over 1,000 single appends to a window of 1k points (goal <= 2).
`dropin_us` is the caller's cost of `runstream.visdom.Visdom.line(..., update='append')` (goal <= 5 us:
the calling thread's CPU time per call, over 100,000 calls; `dropin_complete` says every point then read
back), and `first_draw_ms` the time for the Visdom view in headless Chromium to draw the 1M-point line
(goal <= 1,000).

`client_floor_ms` is what the unchanged client spends on an append's two HTTP round trips (it asks
`win_exists` before each append, then posts it) when the server does no work: the median of two
`win_exists` calls in a row, which runstream answers from memory. `ratio_ceiling` is Visdom's median over
that floor: the ratio a server that stored nothing could reach with this client on this machine.

The real Visdom server runs from the installed package (`visdom.server.run_server.main()`, as
`python -m visdom.server` would, minus its download of JavaScript) on a free loopback port.

    python bench/visdom.py [--appends 3000] [--big 1000000] [--skip-visdom]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from _harness import Server, emit

from runstream_service.launcher import free_port

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def append_times(client: Any, window: str, first_x: int, calls: int) -> list[float]:
    """Seconds of each of `calls` single-point appends to `window`."""
    times = []
    for i in range(calls):
        x = first_x + i
        started = time.perf_counter()
        client.line(X=np.array([x]), Y=np.array([np.sin(x / 50.0)]), win=window, update="append")
        times.append(time.perf_counter() - started)
    return times


def floor_times(client: Any, window: str, env: str, calls: int = 1000) -> list[float]:
    """Seconds of each of `calls` pairs of win_exists calls: an append's round trips, with no server work."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        client.win_exists(window, env=env)
        client.win_exists(window, env=env)
        times.append(time.perf_counter() - started)
    return times


def p99(times: list[float]) -> float:
    return float(np.percentile(np.array(times), 99))


def new_line(client: Any, points: int, env: str) -> str:
    x = np.arange(points)
    window: str = client.line(X=x, Y=np.sin(x / 50.0), env=env, opts={"title": f"{points:,} points"})
    return window


def start_visdom(port: int, env_path: Path) -> subprocess.Popen[bytes]:
    code = (
        "import sys; sys.argv = ['visdom', '-port', sys.argv[1], '-env_path', sys.argv[2]]; "
        "from visdom.server.run_server import main; main()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(port), str(env_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/env_state", data=b"{}", timeout=1)
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the Visdom server exited at start") from None
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the Visdom server did not answer within 60 s")


def first_draw_ms(http_port: int, env: str, window: str) -> float | None:
    """Milliseconds from navigation start to `window` (the 1M-point line) drawn in the Visdom view (median
    of 3 fresh page loads after a warm-up); None without Chromium."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    debug = "window.__runstream && window.__runstream.visdom"
    drawn = f"(() => {{ const v = {debug}; return v && v.draws['{window}']; }})()"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        times = []
        for _ in range(4):  # the first load warms the server's caches
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{http_port}/?tab=visdom&env={env}")
            page.wait_for_function(drawn, timeout=60_000)
            times.append(page.evaluate("performance.now()"))  # from the start of navigation
            context.close()
        browser.close()
    return statistics.median(times[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--big", type=int, default=1_000_000, help="points of the big window (flatness)")
    parser.add_argument("--skip-visdom", action="store_true", help="measure runstream only (no ratio)")
    args = parser.parse_args()
    logging.getLogger("visdom").setLevel(logging.ERROR)
    # This script is bench/visdom.py: with its folder first on sys.path, `import visdom` would find itself.
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    from visdom import Visdom

    last = min(1000, args.appends)
    visdom_port = free_port()
    with Server(extra_args=("--visdom", f"127.0.0.1:{visdom_port}")) as server:
        client = Visdom(port=visdom_port, raise_exceptions=True, use_incoming_socket=False)
        assert client.check_connection(timeout_seconds=10), "runstream's Visdom endpoint does not answer"
        window = new_line(client, 1, "bench")
        runstream_times = append_times(client, window, 1, args.appends)
        runstream_ms = statistics.median(runstream_times[-last:]) * 1e3
        print(f"runstream: {args.appends} appends, median of the last {last} {runstream_ms:.2f} ms")
        floor = statistics.median(floor_times(client, window, "bench"))
        print(f"the client's two round trips of an append, no server work: {floor * 1e3:.2f} ms")

        small = new_line(client, 1000, "bench_flat")
        small_p99 = p99(append_times(client, small, 1000, 1000))
        started = time.perf_counter()
        big = new_line(client, args.big, "bench_flat")
        load_s = time.perf_counter() - started
        big_p99 = p99(append_times(client, big, args.big, 1000))
        print(f"flatness: p99 {small_p99 * 1e3:.2f} ms at 1k points, {big_p99 * 1e3:.2f} ms at {args.big:,}")
        print(f"the big window loaded in {load_s:.1f} s")
        draw_ms = first_draw_ms(server.http_port, "bench_flat", big)
        dropin_us, dropin_complete = measure_dropin_us(server.grpc_port)
        print(f"runstream.visdom.Visdom.line(update='append'): {dropin_us:.2f} us of the caller's CPU per call")

    visdom_median = None
    if not args.skip_visdom:
        with tempfile.TemporaryDirectory(prefix="visdom-bench-") as tmp:
            port = free_port()
            process = start_visdom(port, Path(tmp))
            try:
                real = Visdom(port=port, raise_exceptions=True, use_incoming_socket=False)
                window = new_line(real, 1, "bench")
                visdom_times = append_times(real, window, 1, args.appends)
            finally:
                process.terminate()
                process.wait(30)
        visdom_median = statistics.median(visdom_times[-last:])
        print(f"Visdom: {args.appends} appends, median of the last {last} {visdom_median * 1e3:.2f} ms")

    median = statistics.median(runstream_times[-last:])
    ratio = visdom_median / median if visdom_median is not None else None
    flatness = big_p99 / small_p99
    emit(
        "visdom",
        median * 1e3,
        "ms",
        ratio=ratio,
        flatness=flatness,
        dropin_us=dropin_us,
        dropin_complete=dropin_complete,
        first_draw_ms=draw_ms,
        appends=args.appends,
        runstream_p99_ms=p99(runstream_times[-last:]) * 1e3,
        visdom_median_ms=visdom_median * 1e3 if visdom_median is not None else None,
        client_floor_ms=floor * 1e3,
        ratio_ceiling=visdom_median / floor if visdom_median is not None else None,
        p99_1k_ms=small_p99 * 1e3,
        p99_big_ms=big_p99 * 1e3,
        big_points=args.big,
        big_load_s=load_s,
        goals={"ratio": 20, "flatness": 2, "dropin_us": 5, "first_draw_ms": 1000},
    )
    return 0


def measure_dropin_us(grpc_port: int, calls: int = 100_000) -> tuple[float, bool]:
    """The calling thread's CPU microseconds per `runstream.visdom.Visdom.line(..., update='append')`
    (median over blocks of 10,000 calls; the arrays are made beforehand, as a loop would have them),
    and whether every appended point then reads back from the server."""
    from runstream.visdom import Visdom as DropIn

    client = DropIn(runstream_server=f"127.0.0.1:{grpc_port}", env="bench_dropin")
    xs = [np.array([i]) for i in range(calls)]
    ys = [np.array([float(i % 97)]) for i in range(calls)]
    client.line(Y=ys[0], X=xs[0], win="dropin")
    per_call = []
    for start in range(1, calls, 10_000):
        block = range(start, min(start + 10_000, calls))
        began = time.thread_time()
        for i in block:
            client.line(Y=ys[i], X=xs[i], win="dropin", update="append")
        per_call.append((time.thread_time() - began) / len(block) * 1e6)
    stored = json.loads(client.get_window_data("dropin", "bench_dropin"))
    complete = len(stored["content"]["data"][0]["x"]) == calls
    client.close_client()
    return statistics.median(per_call), complete


if __name__ == "__main__":
    raise SystemExit(main())
