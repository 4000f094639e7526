"""`runstream sql --format json` prints the same JSON through a running server (--url) and from the file (--data)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import runstream
from support import ServerProcess

QUERY = "SELECT step, value, TIMESTAMP '2024-01-02 03:04:05' AS t FROM scalars ORDER BY step"
EXPECTED = [
    {"step": 0, "value": 1.5, "t": "2024-01-02T03:04:05"},
    {"step": 1, "value": "NaN", "t": "2024-01-02T03:04:05"},
    {"step": 2, "value": "Infinity", "t": "2024-01-02T03:04:05"},
    {"step": 3, "value": "-Infinity", "t": "2024-01-02T03:04:05"},
]


def sql_json(*where: str) -> list[dict[str, object]]:
    command = [sys.executable, "-m", "runstream_service", "sql", *where, "--format", "json", QUERY]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout, parse_constant=lambda name: f"bare {name} is not JSON"))


def test_non_finite_values_print_the_same_through_the_server_and_from_the_file(server: ServerProcess) -> None:
    with runstream.init(project="p", name="special", server=server.address) as run:
        for step, value in enumerate([1.5, math.nan, math.inf, -math.inf]):
            run.log({"x": value}, step=step)
    assert sql_json("--url", server.http_url) == EXPECTED
    assert server.stop() == 0
    assert sql_json("--data", str(server.data_dir)) == EXPECTED
