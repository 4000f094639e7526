"""Two `runstream serve --lake` servers on one lake: the page and HTTP API of each read all of it.

A run written through A is listed by B and its points read through B (once A's mover moved them); A reads
its own points exactly once whether they are moved yet or not; B's event stream announces A's new data.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lake_http import get

import runstream
from runstream_service.launcher import LocalServer
from runstream_service.store.lake import LakeConfig

STEPS = 3_000


@pytest.fixture
def servers(tmp_path: Path, lake_config: LakeConfig) -> Iterator[tuple[LocalServer, LocalServer]]:
    args = ["--lake", lake_config.catalog, "--data-path", lake_config.data_path]
    a = LocalServer(tmp_path / "a", args).start()
    b = LocalServer(tmp_path / "b", args).start()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def counted(server: LocalServer, run_id: str) -> int | None:
    """The points of `run_id`'s tag loss that `server` reads (None: it has none), every one (width >= points)."""
    try:
        found = get(server, f"/api/scalars?runs={run_id}&tag=loss&width=10000")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    (series,) = found["series"]
    assert series["exact"] and len(series["x"]) == series["count"]
    return int(series["count"])


def eventually(read: Any, want: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while (got := read()) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def write(server: LocalServer, run_id: str, steps: int) -> None:
    run = runstream.init(project="p", name=run_id, run_id=run_id, server=server.address)
    for step in range(steps):
        run.log({"loss": float(step)}, step=step)
    assert run.flush(timeout=30)
    report = run.finish(timeout=30)
    assert report.unsent_points == 0 and report.rejected_batches == 0, report


def test_a_run_written_through_one_server_is_read_through_the_other(servers: tuple[LocalServer, LocalServer]) -> None:
    a, b = servers
    write(a, "through-a", STEPS)
    # A: every point exactly once, in the outbox or in the lake, whatever the moment of its mover's move
    for _ in range(30):
        assert counted(a, "through-a") == STEPS
    # B: once A's mover moved them (every 0.2 s here), the run and its points
    runs = eventually(lambda: [r["run_id"] for r in get(b, "/api/runs")["runs"]], ["through-a"])
    assert runs == ["through-a"]
    assert eventually(lambda: counted(b, "through-a"), STEPS) == STEPS
    assert get(b, "/api/tags?runs=through-a")["scalars"] == ["loss"]
    assert get(b, "/api/projects")["projects"] == [{"project": "p", "runs": 1}]
    listed = get(b, "/api/runs")["runs"][0]
    assert listed["last_step"] == STEPS - 1 and listed["project"] == "p"
    # downsampled: M4 keeps each column's first, last, lowest and highest point; no point is lost from count
    narrow = get(b, "/api/scalars?runs=through-a&tag=loss&width=100&x=wall")["series"][0]
    assert not narrow["exact"] and narrow["count"] == STEPS and len(narrow["x"]) <= 4 * 100
    assert min(narrow["y"]) == 0.0 and max(narrow["y"]) == STEPS - 1
    relative = get(b, "/api/scalars?runs=through-a&tag=loss&width=10000&x=relative")["series"][0]
    assert relative["count"] == STEPS and relative["x"][0] == 0.0
    # every point of the series for export, on either server, each once, by step
    for server in (a, b):
        points = get(server, "/api/points?run=through-a&tag=loss&x_min=10&x_max=2000")
        assert points["count"] == 1991 and points["step"] == list(range(10, 2001)), server
        assert points["value"] == [float(step) for step in range(10, 2001)]
    try:
        get(b, "/api/points?run=through-a&tag=nope")
        raise AssertionError("a tag the run does not have must be a 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and "nope" in json.loads(exc.read())["error"]


def test_both_servers_runs_overlay_on_either(servers: tuple[LocalServer, LocalServer]) -> None:
    a, b = servers
    write(a, "on-a", 500)
    write(b, "on-b", 700)
    for server in (a, b):
        found = eventually(lambda s=server: [counted(s, "on-a"), counted(s, "on-b")], [500, 700])
        assert found == [500, 700]
        series = get(server, "/api/scalars?runs=on-b,on-a&tag=loss&width=10000")["series"]
        assert [s["run_id"] for s in series] == ["on-b", "on-a"]
        for runs, axis in (("on-a,nope", "step"), ("nope", "step"), ("on-b,nope", "wall")):  # as one server says
            try:
                get(server, f"/api/scalars?runs={runs}&tag=loss&x={axis}")
                raise AssertionError(f"{runs}: an unknown run must be a 404")
            except urllib.error.HTTPError as exc:
                assert exc.code == 404 and "unknown run id(s): nope" in json.loads(exc.read())["error"]


def test_events_of_one_server_announce_what_another_moved(servers: tuple[LocalServer, LocalServer]) -> None:
    a, b = servers
    subscribed = threading.Event()
    announced: list[str] = []

    def listen() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/api/events", timeout=60) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("retry:"):
                    subscribed.set()
                elif line.startswith("data:"):
                    announced.extend(json.loads(line[5:])["runs"])
                    if "from-a" in announced:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(30)
    write(a, "from-a", 100)
    listener.join(30)
    assert "from-a" in announced


def test_a_batch_between_the_lake_commit_and_the_outbox_delete_counts_once(
    tmp_path: Path, lake_config: LakeConfig
) -> None:
    """The mover's two commits, played by hand on a real file and lake: before, between and after them,
    the batch's points count once."""
    import duckdb

    from runstream_service.store import lake
    from runstream_service.store.file import FileStore
    from runstream_service.store.lake_queries import LakeReads
    from runstream_service.store.lake_store import create_outbox

    con = duckdb.connect(str(tmp_path / "local.duckdb"), config={"enable_external_access": True})
    try:
        FileStore(con)
        lake.attach(con, lake_config)
        lake.create_schema(con)
        create_outbox(con)
        con.execute(
            "INSERT INTO lake.lake_runs (run_id, project, name, status, created_at, world_size) "
            "VALUES ('r', 'p', 'r', 'running', 0, 1)"
        )
        con.execute(
            "INSERT INTO lake_outbox_batches (writer_id, seq, points, batch_key, run_id, rank, tags) "
            "VALUES ('w', 1, 50, 1, 'r', 0, ['loss'])"
        )
        con.execute("INSERT INTO lake_outbox_points SELECT 1, 0, i, i, i FROM range(50) t(i)")

        def count() -> int:
            ((_, found),) = LakeReads().scalar_series(con.cursor(), ["r"], "loss", "step", None, None, 1000)
            assert found.exact and found.x.tolist() == list(range(50))
            return found.count

        assert count() == 50  # acknowledged, not moved
        con.execute("BEGIN")  # the mover's lake commit: points and key together
        con.execute("INSERT INTO lake.lake_scalars SELECT 'r', 'loss', i, 0, i, i FROM range(50) t(i)")
        con.execute("INSERT INTO lake.lake_batches VALUES ('w', 1, 'a', 0)")
        con.execute("COMMIT")
        assert count() == 50  # in the lake and still in the outbox
        con.execute("DELETE FROM lake_outbox_points")
        con.execute("DELETE FROM lake_outbox_batches")
        assert count() == 50  # moved
        # a run moved since the lake watch last looked (it looks once a second) is listed with its progress
        (listed,) = LakeReads(progress=dict).list_runs(con.cursor(), None, None, {})
        assert (listed["run_id"], listed["last_step"], listed["last_time"]) == ("r", 49, 49.0)
    finally:
        con.close()


def test_the_change_feed_merges_local_commits_and_lake_changes() -> None:
    from runstream_service.store.lake_changes import LakeChanges
    from runstream_service.store.writer import WriterStats

    local = WriterStats()
    local.mark_changed({"old"})
    feed = LakeChanges(local)
    seen = feed.commit_number
    assert feed.runs_changed_since(seen) == []
    local.mark_changed({"here"})
    feed.lake_changed(["there"])
    assert feed.commit_number > seen
    assert sorted(feed.runs_changed_since(seen)) == ["here", "there"]
    seen = feed.commit_number
    feed.lake_changed([])  # the lake changed, no run's points: still an update (the page refreshes its runs)
    assert feed.commit_number > seen and feed.runs_changed_since(seen) == []


def test_a_rename_and_tags_through_one_servers_api_show_on_the_other(servers: tuple[LocalServer, LocalServer]) -> None:
    a, b = servers
    write(a, "labelled", 100)
    assert eventually(lambda: [r["run_id"] for r in get(b, "/api/runs")["runs"]], ["labelled"]) == ["labelled"]
    body = json.dumps({"name": "fixed typo", "add_tags": ["baseline"], "note": "ok"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{a.http_port}/api/runs/labelled",
        data=body,
        headers={"Content-Type": "application/json"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200

    def shown(server: LocalServer) -> list[Any]:
        (run,) = get(server, "/api/runs")["runs"]
        return [run["name"], run["tags"], run["note"]]

    want = ["fixed typo", ["baseline"], "ok"]
    assert shown(a) == want  # at once on the server that took it
    assert eventually(lambda: shown(b), want) == want  # on the other once A's mover moved it
