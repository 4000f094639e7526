"""The HTTP app in-process, built from fakes of its ports: no server, no writer thread, no gRPC.

A fake reader answers every read with a canned value (or raises a canned error), so these tests
check what the app itself does: parameters, shaping, the error middleware, the token check, and
/healthz and /metrics from one health snapshot. The live-server tests (tests/integration) check
the same routes against real data.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aiohttp.test_utils import TestClient, TestServer

from runstream_dashboards import sse
from runstream_dashboards.app import make_app
from runstream_dashboards.ports import AppDeps, Health
from runstream_service.auth import TokenTable, parse_tokens
from runstream_service.errors import (
    BadRequest,
    NotFound,
    PermissionDenied,
    RunstreamError,
    TooLarge,
    Unauthenticated,
)
from runstream_service.store.readonly_sql import SqlFailed, SqlTimeout, UnsafeSql

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "runstream_dashboards"
READ_TOKEN = "r" * 20
WRITE_TOKEN = "w" * 20

HEALTH = Health(
    points_committed=1234,
    batches_committed=56,
    batches_duplicate=3,
    batches_rejected=2,
    queued_points=789,
    uncompacted_points=4000,
    compactions=7,
    merges=1,
    generations=5,
    compacting=True,
    compaction_deferred=4,
    compaction_seconds=1.5,
    duckdb_memory_limit="1.0 GiB",
    commits=10,
    commit_seconds_sum=0.25,
    commit_seconds_buckets=((0.01, 6), (0.1, 3), (1.0, 0)),
)


@dataclass
class FakeReader:
    """Answers every read with `answer`, or raises `error`; with a `cursor`, runs the read on it."""

    answer: Any = None
    error: Exception | None = None
    cursor: duckdb.DuckDBPyConnection | None = None
    reads: int = 0

    async def run(self, read: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        self.reads += 1
        if self.error is not None:
            raise self.error
        if self.cursor is not None:
            return read(self.cursor)
        return self.answer


@dataclass
class FakeHealth:
    """Hands out one snapshot per call and counts the calls."""

    snapshot: Health = HEALTH
    calls: int = 0

    def __call__(self) -> Health:
        self.calls += 1
        return self.snapshot


@dataclass
class FakeChanges:
    """A change feed whose commit counter moves on every look, as if a commit came each time."""

    runs: list[str] = field(default_factory=lambda: ["run-a"])
    looks: int = 0

    @property
    def commit_number(self) -> int:
        self.looks += 1
        return self.looks

    def runs_changed_since(self, commit_number: int) -> list[str]:
        return list(self.runs)


def deps(
    reader: FakeReader | None = None,
    health: FakeHealth | None = None,
    tokens: TokenTable | None = None,
) -> AppDeps:
    return AppDeps(
        reader=reader or FakeReader(),
        health=health or FakeHealth(),
        changes=FakeChanges(),
        sql_timeout=5.0,
        tokens=tokens,
    )


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def call(app_deps: AppDeps, method: str, path: str, **kwargs: Any) -> Reply:
    """One request to a new app over `app_deps`, through aiohttp's test client (loopback, in this process).

    A new app each time: an aiohttp app belongs to the event loop it first ran on.
    """

    async def go() -> Reply:
        async with TestClient(TestServer(make_app(app_deps))) as client:
            async with client.request(method, path, allow_redirects=False, **kwargs) as reply:
                return Reply(reply.status, await reply.read(), dict(reply.headers))

    return asyncio.run(go())


def tokens() -> TokenTable:
    return parse_tokens(f"{READ_TOKEN} read\n{WRITE_TOKEN} write:*\n")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (under `if TYPE_CHECKING:` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_dashboard_package_never_imports_the_server() -> None:
    """The app depends on its ports (ports.py); the server module composes both sides, one way only."""
    modules = sorted(DASHBOARDS.glob("*.py"))
    assert modules, DASHBOARDS
    for module in modules:
        server_imports = {m for m in imported_modules(module) if m.startswith("runstream_service.server")}
        assert not server_imports, f"{module.name} imports {server_imports}"


# --- the one error path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("'width' must be an integer, got 'x'"), 400),
        (NotFound("unknown run id(s): nope"), 404),
        (TooLarge("30,000 points, more than 29,999: read a step range at a time (x_min, x_max)"), 400),
        (UnsafeSql("only a read-only SELECT statement is allowed, not INSERT"), 400),
        (SqlTimeout("the query ran longer than 5 s and was interrupted"), 400),
        (SqlFailed("Catalog Error: Table with name nope does not exist!"), 400),
        (Unauthenticated("unknown token"), 401),
        (PermissionDenied("this token lacks the scope 'read'"), 403),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_every_error_of_the_tree_is_rendered_with_its_status(error: RunstreamError, status: int) -> None:
    assert error.http_status == status
    reply = call(deps(FakeReader(error=error)), "GET", "/api/projects")
    assert reply.status == status
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == {"error": str(error), "status": status}


def test_sql_errors_from_the_reader_reach_the_client_as_they_were_raised() -> None:
    error = UnsafeSql("only a read-only SELECT statement is allowed, not DELETE")
    reply = call(deps(FakeReader(error=error)), "POST", "/api/sql", json={"sql": "DELETE FROM runs"})
    assert (reply.status, reply.json()) == (400, {"error": str(error), "status": 400})


def test_an_unexpected_failure_is_a_500_without_its_details(caplog: pytest.LogCaptureFixture) -> None:
    reply = call(deps(FakeReader(error=RuntimeError("secret internals"))), "GET", "/api/projects")
    assert reply.status == 500
    assert reply.json() == {"error": "the server failed to answer this request; its log has the details", "status": 500}
    assert "secret internals" not in reply.body.decode()
    assert "GET /api/projects failed" in caplog.text


def test_aiohttp_errors_are_json_too() -> None:
    reply = call(deps(), "GET", "/api/nothing-here")
    assert (reply.status, reply.json()) == (404, {"error": "Not Found", "status": 404})
    reply = call(deps(), "POST", "/api/projects")
    assert (reply.status, reply.json()) == (405, {"error": "Method Not Allowed", "status": 405})


def test_bad_parameters_are_400s_that_name_the_parameter() -> None:
    reader = FakeReader(answer=[])
    app_deps = deps(reader)
    reply = call(app_deps, "GET", "/api/scalars?runs=a&tag=loss&width=wide")
    assert (reply.status, reply.json()) == (400, {"error": "'width' must be an integer, got 'wide'", "status": 400})
    reply = call(app_deps, "GET", "/api/scalars?runs=a&tag=loss&x_min=5&x_max=1")
    assert reply.json()["error"] == "x_min (5.0) must not be greater than x_max (1.0)"
    reply = call(app_deps, "GET", "/api/histograms?run=a")
    assert (reply.status, reply.json()["error"]) == (400, "missing query parameter 'tag'")
    reply = call(app_deps, "POST", "/api/sql", data=b"not json")
    assert reply.status == 400 and reply.json()["error"].startswith("the body must be JSON")
    reply = call(app_deps, "POST", "/api/sql", json={"sql": "SELECT 1", "limit": 0})
    assert reply.json() == {"error": '"limit" must be an integer between 1 and 100000', "status": 400}
    assert reader.reads == 0, "refused before anything was read"


# --- tokens, through the middleware ---------------------------------------------------------------------


def test_without_a_token_file_everything_is_open() -> None:
    assert call(deps(FakeReader(answer=[])), "GET", "/api/projects").status == 200


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "a token with the scope 'read' is required"),
        ({"Authorization": "Bearer " + "x" * 20}, 401, "unknown token"),
        ({"Authorization": "Bearer " + WRITE_TOKEN}, 403, "lacks the scope 'read'"),
        ({"Cookie": "runstream_session=forged"}, 401, "the session has expired or is unknown"),
    ],
)
def test_tokens_are_checked_before_any_read(headers: dict[str, str], status: int, error: str) -> None:
    reader = FakeReader(answer=[])
    reply = call(deps(reader, tokens=tokens()), "GET", "/api/projects", headers=headers)
    assert reply.status == status
    assert reply.json()["status"] == status and error in reply.json()["error"]
    assert reader.reads == 0


def test_a_read_token_opens_the_api_and_healthz_needs_none() -> None:
    app_tokens = tokens()
    reply = call(
        deps(FakeReader(answer=[]), tokens=app_tokens),
        "GET",
        "/api/projects",
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
    )
    assert (reply.status, reply.json()) == (200, {"projects": []})
    assert call(deps(tokens=app_tokens), "GET", "/healthz").status == 200


def test_login_with_a_token_sets_a_session_that_opens_the_api() -> None:
    app_deps = deps(FakeReader(answer=[{"project": "p", "runs": 1}]), tokens=tokens())
    app = make_app(app_deps)

    async def go() -> tuple[int, int, Any]:
        async with TestClient(TestServer(app)) as client:
            async with client.get(f"/login?token={READ_TOKEN}", allow_redirects=False) as login:
                assert login.headers["Location"] == "/"
            async with client.get("/api/projects") as reply:
                return login.status, reply.status, await reply.json()

    assert asyncio.run(go()) == (303, 200, {"projects": [{"project": "p", "runs": 1}]})
    reply = call(app_deps, "GET", f"/login?token={WRITE_TOKEN}")
    assert reply.status == 403 and "lacks the scope 'read'" in reply.json()["error"]


# --- /healthz and /metrics: one snapshot -----------------------------------------------------------------


def snapshots_taken(app_deps: AppDeps, path: str) -> tuple[Reply, int]:
    """GET `path` from an app over `app_deps`, and how many snapshots answering it took."""
    health = app_deps.health
    assert isinstance(health, FakeHealth)

    async def go() -> tuple[Reply, int]:
        app = make_app(app_deps)
        before = health.calls  # the metrics registry may look once when the app is built
        async with TestClient(TestServer(app)) as client:
            async with client.get(path) as reply:
                return Reply(reply.status, await reply.read(), dict(reply.headers)), health.calls - before

    return asyncio.run(go())


def test_healthz_renders_the_snapshot() -> None:
    reply, taken = snapshots_taken(deps(), "/healthz")
    assert reply.status == 200
    assert reply.json() == {
        "status": "ok",
        "points_committed": 1234,
        "batches_committed": 56,
        "batches_rejected": 2,
        "queued_points": 789,
        "uncompacted_points": 4000,
        "compactions": 7,
        "merges": 1,
        "generations": 5,
        "compacting": True,
        "compaction_deferred": 4,
        "duckdb_memory_limit": "1.0 GiB",
        "retention": None,
    }
    assert taken == 1


def metric_lines(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}


def test_metrics_render_the_same_snapshot_once_per_scrape() -> None:
    reply, taken = snapshots_taken(deps(), "/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert taken == 1, "every figure of one scrape comes from one snapshot"
    found = metric_lines(reply.body.decode())
    assert found["runstream_points_ingested_total"] == 1234
    assert found["runstream_batches_ingested_total"] == 56
    assert found["runstream_batches_duplicate_total"] == 3
    assert found["runstream_batches_rejected_total"] == 2
    assert found["runstream_queue_points"] == 789
    assert found["runstream_uncompacted_points"] == 4000
    assert found["runstream_compactions_total"] == 7
    assert found["runstream_merges_total"] == 1
    assert found["runstream_compaction_deferrals_total"] == 4
    assert found["runstream_compaction_seconds_total"] == 1.5
    assert found["runstream_generations"] == 5
    # Buckets are cumulative; +Inf counts every commit, slower ones included.
    assert found['runstream_commit_seconds_bucket{le="0.01"}'] == 6
    assert found['runstream_commit_seconds_bucket{le="0.1"}'] == 9
    assert found['runstream_commit_seconds_bucket{le="1.0"}'] == 9
    assert found['runstream_commit_seconds_bucket{le="+Inf"}'] == 10
    assert found["runstream_commit_seconds_sum"] == 0.25


def test_healthz_and_metrics_agree_on_a_changed_snapshot() -> None:
    health = FakeHealth(replace(HEALTH, points_committed=99, queued_points=0))
    app_deps = deps(health=health)
    assert call(app_deps, "GET", "/healthz").json()["points_committed"] == 99
    found = metric_lines(call(app_deps, "GET", "/metrics").body.decode())
    assert found["runstream_points_ingested_total"] == 99 and found["runstream_queue_points"] == 0


# --- a few routes' happy paths ------------------------------------------------------------------------------


def test_projects_and_runs_are_shaped_from_the_reads() -> None:
    found_runs = [
        {"run_id": "a", "name": "base", "config": {"lr": 0.1, "opt": "sgd"}},
        {"run_id": "b", "name": "wide", "config": {"lr": 0.3, "width": 512}},
    ]
    reply = call(deps(FakeReader(answer=found_runs)), "GET", "/api/runs?project=p&config.lr=0.1")
    assert reply.status == 200
    assert reply.json() == {"runs": found_runs, "config_keys": ["lr", "opt", "width"]}
    projects = [{"project": "mnist", "runs": 2}]
    assert call(deps(FakeReader(answer=projects)), "GET", "/api/projects").json() == {"projects": projects}


@pytest.fixture
def cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    yield con
    con.close()


def test_sql_runs_the_read_only_checks_on_the_readers_cursor(cursor: duckdb.DuckDBPyConnection) -> None:
    app_deps = deps(FakeReader(cursor=cursor))
    reply = call(app_deps, "POST", "/api/sql", json={"sql": "SELECT 1 AS one, 'NaN'::DOUBLE AS nan", "limit": 10})
    assert reply.status == 200
    answer = reply.json()
    assert (answer["columns"], answer["rows"], answer["truncated"]) == (["one", "nan"], [[1, "NaN"]], False)
    reply = call(app_deps, "POST", "/api/sql", json={"sql": "CREATE TABLE t (x INT)"})
    assert reply.status == 400 and reply.json()["error"].startswith("only a read-only SELECT statement is allowed")


def test_events_report_the_runs_of_the_change_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "EVENT_INTERVAL_SECONDS", 0.0)
    app = make_app(deps())

    async def go() -> str:
        async with TestClient(TestServer(app)) as client:
            async with client.get("/api/events") as reply:
                assert reply.headers["Content-Type"] == "text/event-stream"
                text = ""
                while "event: update" not in text or not text.endswith("\n\n"):
                    text += (await reply.content.readline()).decode()
                return text

    text = asyncio.run(go())
    assert text.startswith("retry: 2000\n\n")
    payload = json.loads(text.split("event: update\ndata: ", 1)[1])
    assert payload["runs"] == ["run-a"]
