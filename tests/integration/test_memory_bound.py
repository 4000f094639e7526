"""Four memory-hungry read-only queries sent at once to a live server while a run streams in: each is
refused or stopped with a 400 that says why, the page and ingest go on, and no acknowledged point is
lost. The server's peak memory is printed, not asserted (bench/soak.py measures the bound)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import runstream
from support import ServerProcess

HUNGRY = (
    "SELECT max(len(l)) FROM (SELECT list(range) l FROM range(400000000))",
    "SELECT length(string_agg(range::VARCHAR, ',')) FROM range(400000000)",
    "SELECT max(len(l)) FROM (SELECT range % 4 AS g, list(range) l FROM range(400000000) GROUP BY g)",
    "SELECT count(*) FROM (SELECT DISTINCT range * 7919 FROM range(400000000))",
)
TAGS = ("loss", "acc", "lr", "grad_norm")


def _post(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _peak_rss_mib(server: ServerProcess) -> float:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_four_hungry_queries_at_once_are_each_stopped_with_a_400_while_ingest_goes_on(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", ("--memory-limit", "1GB", "--sql-timeout", "10")).start()
    try:
        run = runstream.init(project="memory", name="streaming", server=server.address)
        logging_done = threading.Event()
        logged = [0]

        def log() -> None:  # the training job: keeps logging until the queries are answered
            step = 0
            while not logging_done.is_set():
                for _ in range(1000):
                    run.log({tag: step * 0.5 for tag in TAGS}, step=step)
                    step += 1
                time.sleep(0.005)
            logged[0] = step * len(TAGS)

        writer = threading.Thread(target=log)
        writer.start()
        answers: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(HUNGRY)

        def ask(index: int) -> None:
            answers[index] = _post(server.http_port, "/api/sql", {"sql": HUNGRY[index]})

        time.sleep(1.0)  # points are flowing
        started = time.monotonic()
        askers = [threading.Thread(target=ask, args=(i,)) for i in range(len(HUNGRY))]
        for asker in askers:
            asker.start()
        pages = []
        while any(asker.is_alive() for asker in askers):
            pages.append(_post(server.http_port, "/api/runs?project=memory")[0])
            time.sleep(0.2)
        answered_s = time.monotonic() - started
        for asker in askers:
            asker.join()
        logging_done.set()
        writer.join()
        report = run.finish()
        health = _post(server.http_port, "/healthz")[1]
        print(
            f"four hungry queries answered in {answered_s:.1f} s; server peak RSS {_peak_rss_mib(server):.0f} MiB "
            f"(--memory-limit 1GB); {logged[0]:,} points logged"
        )
        for sql, (status, reply) in zip(HUNGRY, answers, strict=True):
            print(f"  {status}: {reply.get('error', '')[:160]}  <- {sql[:60]}")
    finally:
        server.stop()

    for status, reply in answers:
        assert (status, reply.get("status")) == (400, 400), reply
        assert "memory" in reply["error"] or "time limit" in reply["error"], reply
    assert set(pages) == {200}  # the page's reads went on
    assert report.lost_points == 0 and report.spooled_points == 0, report
    assert health["points_committed"] == logged[0]
    assert server.sql("SELECT count(*) FROM scalars")[0][0] == logged[0]
