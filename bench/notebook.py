"""A notebook's read: 10M rows of `scalars` into pandas through runstream.query (the Arrow answer of
POST /api/sql), against the JSON answer of the same route at its 100,000-row cap, as rows per second.

Data: 10 runs x 2 tags x 500,000 steps (--rows in all), logged over gRPC as SDK clients send them
(bench/dataset.py) into a real server, left to compact first. Arrow: runstream.query("SELECT * FROM
scalars").to_pandas(), every row. JSON: POST /api/sql {"sql": "SELECT * FROM scalars", "limit": 100000},
parsed and made a DataFrame, as a notebook would without the query client. Each the median of --repeat,
after one warm-up. `ratio` = Arrow rows/s / JSON rows/s (goal >= 10); `count_ok` says the Arrow answer
held every row logged.

    python bench/notebook.py [--rows 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pandas as pd
from _harness import Server, emit, settle
from dataset import log_scalars

import runstream

RUNS, TAGS = 10, ("loss", "acc")
JSON_CAP = 100_000
JSON_SERVER_MS: list[float] = []  # the server's own time per JSON answer ("elapsed_ms")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of `repeat` calls after one warm-up, and the last call's result."""
    result = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def arrow_read(url: str) -> pd.DataFrame:
    return runstream.query("SELECT * FROM scalars", url=url).to_pandas()


def json_read(url: str) -> pd.DataFrame:
    body = json.dumps({"sql": "SELECT * FROM scalars", "limit": JSON_CAP}).encode()
    request = urllib.request.Request(url + "/api/sql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as reply:
        answer = json.load(reply)
    JSON_SERVER_MS.append(float(answer["elapsed_ms"]))
    return pd.DataFrame(answer["rows"], columns=answer["columns"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    steps = max(1, args.rows // (RUNS * len(TAGS)))
    with Server() as server:
        logged = log_scalars(server.address, RUNS, list(TAGS), steps, project="notebook")
        print(f"logged {logged.points:,} points in {logged.seconds:.1f} s", flush=True)
        waited, _ = settle(server, timeout=1800)
        print(f"compacted after {waited:.1f} s more", flush=True)

        arrow_s, frame = timed(lambda: arrow_read(server.http_url), args.repeat)
        arrow_rows = len(frame)
        del frame
        json_s, json_frame = timed(lambda: json_read(server.http_url), args.repeat)
        json_rows = len(json_frame)
        arrow_rps, json_rps = arrow_rows / arrow_s, json_rows / json_s
        print(f"arrow: {arrow_rows:,} rows in {arrow_s:.2f} s = {arrow_rps:,.0f} rows/s", flush=True)
        server_ms = statistics.median(JSON_SERVER_MS)
        print(f"json:  {json_rows:,} rows in {json_s:.3f} s = {json_rps:,.0f} rows/s", flush=True)
        print(f"       of which the server's query and JSON cells: {server_ms:.0f} ms", flush=True)
        emit(
            "notebook_arrow_rows_per_s",
            arrow_rps,
            "rows/s",
            ratio=arrow_rps / json_rps,
            json_rows_per_s=json_rps,
            rows=arrow_rows,
            arrow_s=arrow_s,
            json_rows=json_rows,
            json_s=json_s,
            json_server_ms=server_ms,
            count_ok=arrow_rows == logged.points and json_rows == min(JSON_CAP, logged.points),
        )


if __name__ == "__main__":
    main()
