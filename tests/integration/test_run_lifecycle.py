"""Run lifecycle against live servers: delete (other runs untouched, a writer of the deleted run refused,
space reused), rename, tags, note, archive, the admin scope, the CLI over --url and --data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest

from runstream import init as runstream_init
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from runstream_service.auth import fingerprint
from support import ServerProcess

READ = "read-token-0123456789abcdef"
READ_ADMIN_A = "read-admin-a-0123456789abcdef"
ADMIN_ALL = "admin-all-token-0123456789abcdef"
WRITE_ALL = "write-all-token-0123456789abcdef"
TOKEN_FILE = f"""{READ} read
{READ_ADMIN_A} read,admin:A
{ADMIN_ALL} read,admin:*
{WRITE_ALL} write:*
"""
AUTH = (("authorization", f"Bearer {WRITE_ALL}"),)


def call(
    server: ServerProcess, method: str, path: str, body: Any = None, token: str | None = ADMIN_ALL
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.http_url}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def sql(server: ServerProcess, query: str) -> list[list[Any]]:
    status, answer = call(server, "POST", "/api/sql", {"sql": query, "limit": 100_000}, READ)
    assert status == 200, answer
    rows: list[list[Any]] = answer["rows"]
    return rows


def batch(run_id: str, writer: str, seq: int, points: int, kinds: bool = False) -> pb.Batch:
    """`points` scalars of tag x (steps seq * points ...), and with `kinds` a histogram and a text too."""
    message = pb.Batch(
        run_id=run_id,
        writer_id=writer,
        seq=seq,
        tags=["x", "h", "t"],
        scalars=pb.Scalars(
            tag_index=np.zeros(points, "<u4").tobytes(),
            step=(np.arange(points, dtype="<i8") + seq * points).tobytes(),
            wall_time=np.full(points, 1.7e9, "<f8").tobytes(),
            value=np.random.default_rng(seq).random(points).astype("<f8").tobytes(),
        ),
    )
    if kinds:
        message.histograms.CopyFrom(
            pb.Histograms(
                tag_index=np.array([1], "<u4").tobytes(),
                step=np.array([seq], "<i8").tobytes(),
                wall_time=np.array([1.7e9], "<f8").tobytes(),
                bucket_count=np.array([2], "<u4").tobytes(),
                edges=np.array([0.0, 1.0, 2.0], "<f8").tobytes(),
                counts=np.array([3.0, 4.0], "<f8").tobytes(),
                min=np.array([0.0], "<f8").tobytes(),
                max=np.array([2.0], "<f8").tobytes(),
                sum=np.array([7.0], "<f8").tobytes(),
                sum_squares=np.array([9.0], "<f8").tobytes(),
            )
        )
        message.texts.CopyFrom(
            pb.Texts(
                tag_index=np.array([2], "<u4").tobytes(),
                step=np.array([seq], "<i8").tobytes(),
                wall_time=np.array([1.7e9], "<f8").tobytes(),
                text=[f"note {seq}"],
            )
        )
    return message


def open_run(stub: pb_grpc.IngestStub, run_id: str, project: str) -> None:
    stub.OpenRun(pb.OpenRunRequest(run_id=run_id, project=project, name=f"name of {run_id}"), metadata=AUTH, timeout=20)


def write(stub: pb_grpc.IngestStub, batches: list[pb.Batch]) -> list[pb.WriteAck]:
    return list(stub.Write(iter(batches), metadata=AUTH, timeout=60))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, pb_grpc.IngestStub]]:
    base = tmp_path_factory.mktemp("lifecycle")
    tokens = base / "tokens"
    tokens.write_text(TOKEN_FILE)
    server = ServerProcess(base / "data", ("--tokens", str(tokens), "--compact-seconds", "0.2")).start()
    channel = grpc.insecure_channel(server.address)
    yield server, pb_grpc.IngestStub(channel)
    channel.close()
    if server.process is not None and server.process.poll() is None:
        server.stop()


def settle(server: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    while True:
        _, health = call(server, "GET", "/healthz", token=None)
        if health["uncompacted_points"] == 0 and not health["compacting"]:
            return
        assert time.monotonic() < deadline, health
        time.sleep(0.1)


VIEWS = ("scalars", "histograms", "texts", "tag_info", "custom_scalar_layouts", "runs")


def counts(server: ServerProcess, run_id: str) -> dict[str, int]:
    return {view: sql(server, f"SELECT count(*) FROM {view} WHERE run_id = '{run_id}'")[0][0] for view in VIEWS}


def test_delete_removes_the_run_and_leaves_the_others(served: tuple[ServerProcess, pb_grpc.IngestStub]) -> None:
    server, stub = served
    for run_id in ("gone", "kept"):
        open_run(stub, run_id, "A")
        write(stub, [batch(run_id, f"w-{run_id}", 1, 5_000, kinds=True)])
    settle(server)  # compacted points, with rollups
    write(stub, [batch("gone", "w-gone", 2, 5_000), batch("kept", "w-kept", 2, 5_000)])  # and hot ones
    kept_before = counts(server, "kept")
    assert counts(server, "gone")["scalars"] == 10_000

    status, answer = call(server, "DELETE", "/api/runs/gone", token=READ_ADMIN_A)
    assert status == 200, answer
    assert answer["deleted"]["points"] == 10_002 and answer["deleted"]["name"] == "name of gone"

    assert counts(server, "gone") == dict.fromkeys(VIEWS, 0)
    assert counts(server, "kept") == kept_before
    series = sql(server, "SELECT count(*) FROM series WHERE run_id = 'gone'")
    rollups = sql(server, "SELECT count(*) FROM scalar_rollups JOIN series USING (series_id) WHERE run_id = 'gone'")
    assert series == [[0]] and rollups == [[0]]
    log = sql(server, "SELECT run_id, project, name, points, deleted_by FROM run_deletions")
    assert log == [["gone", "A", "name of gone", 10_002, f"token {fingerprint(READ_ADMIN_A)}"]]
    status, _ = call(server, "DELETE", "/api/runs/gone")
    assert status == 404


def test_a_writer_of_a_deleted_run_is_refused(served: tuple[ServerProcess, pb_grpc.IngestStub]) -> None:
    server, stub = served
    open_run(stub, "doomed", "A")
    write(stub, [batch("doomed", "w-doomed", 1, 100)])
    assert call(server, "DELETE", "/api/runs/doomed")[0] == 200
    with pytest.raises(grpc.RpcError) as refused:
        write(stub, [batch("doomed", "w-doomed", 2, 100)])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "run 'doomed' was deleted" in str(refused.value.details())
    with pytest.raises(grpc.RpcError) as reopened:
        open_run(stub, "doomed", "A")
    assert reopened.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "was deleted" in str(reopened.value.details())
    with pytest.raises(ValueError, match="was deleted"):  # the SDK says so, not "server unavailable"
        runstream_init(project="A", run_id="doomed", server=server.address, token=WRITE_ALL)
    assert sql(server, "SELECT count(*) FROM runs WHERE run_id = 'doomed'") == [[0]]


def test_only_admin_of_the_project_may_change_runs(served: tuple[ServerProcess, pb_grpc.IngestStub]) -> None:
    server, stub = served
    open_run(stub, "other", "B")
    for token in (READ, READ_ADMIN_A, WRITE_ALL, None):
        status, answer = call(server, "DELETE", "/api/runs/other", token=token)
        assert status in (401, 403), (token, answer)
        status, answer = call(server, "PATCH", "/api/runs/other", {"name": "x"}, token=token)
        assert status in (401, 403), (token, answer)
    status, answer = call(server, "DELETE", "/api/runs/other", token=READ_ADMIN_A)
    assert "admin:B" in answer["error"]
    assert sql(server, "SELECT name FROM runs WHERE run_id = 'other'") == [["name of other"]]


def test_rename_tags_note_archive(served: tuple[ServerProcess, pb_grpc.IngestStub]) -> None:
    server, stub = served
    open_run(stub, "labelled", "A")
    status, answer = call(
        server, "PATCH", "/api/runs/labelled", {"name": "fixed typo", "add_tags": ["baseline", "best"], "note": "ok"}
    )
    assert status == 200, answer
    assert answer == {"run_id": "labelled", "name": "fixed typo", "tags": ["baseline", "best"], "note": "ok",
                      "archived": False}  # fmt: skip
    assert call(server, "PATCH", "/api/runs/labelled", {"remove_tags": ["best"], "archived": True})[0] == 200
    row = sql(server, "SELECT name, tags, note, archived FROM runs WHERE run_id = 'labelled'")
    assert row == [["fixed typo", ["baseline"], "ok", True]]
    _, listed = call(server, "GET", "/api/runs?project=A", token=READ)
    mine = [r for r in listed["runs"] if r["run_id"] == "labelled"]
    assert [(r["name"], r["tags"], r["note"], r["archived"]) for r in mine] == [
        ("fixed typo", ["baseline"], "ok", True)
    ]
    for bad in ({"tags": "x"}, {"archived": "yes"}, {"name": ""}, {"colour": "red"}, {}):
        status, answer = call(server, "PATCH", "/api/runs/labelled", bad)
        assert status == 400, (bad, answer)


def runstream(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("RUNSTREAM_TOKEN", None)
    if token:
        env["RUNSTREAM_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "runstream_service", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_the_cli_over_url_then_over_data(served: tuple[ServerProcess, pb_grpc.IngestStub]) -> None:
    server, stub = served
    open_run(stub, "cli-run", "C")
    open_run(stub, "cli-gone", "C")
    url = ("--url", server.http_url)
    assert runstream("runs", "rename", "cli-run", "renamed", *url, token=ADMIN_ALL).returncode == 0
    tagged = runstream("runs", "tag", "cli-run", "a", "b", *url, token=ADMIN_ALL)
    assert tagged.returncode == 0 and "tags a, b" in tagged.stdout
    assert runstream("runs", "archive", "cli-run", *url, token=ADMIN_ALL).returncode == 0
    refused = runstream("runs", "delete", "cli-gone", "--yes", *url, token=READ)
    assert refused.returncode == 1 and "admin:C" in refused.stderr
    listed = runstream("runs", "list", "--project", "C", "--format", "json", *url, token=READ)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == ["cli-gone"]
    listed = runstream("runs", "list", "--project", "C", "--archived", *url, token=READ)
    assert "renamed" in listed.stdout and "a,b" in listed.stdout

    server.stop()
    data = ("--data", str(server.data_dir))
    no_tty = runstream("runs", "delete", "cli-gone", *data)
    assert no_tty.returncode == 1 and "--yes" in no_tty.stderr
    deleted = runstream("runs", "delete", "cli-gone", "--yes", *data)
    assert deleted.returncode == 0, deleted.stderr
    assert runstream("runs", "note", "cli-run", "from the shell", *data).returncode == 0
    assert runstream("runs", "unarchive", "cli-run", *data).returncode == 0
    listed = runstream("runs", "list", "--project", "C", "--format", "json", *data)
    assert [(r["run_id"], r["name"], r["note"]) for r in json.loads(listed.stdout)] == [
        ("cli-run", "renamed", "from the shell")
    ]
    assert server.sql("SELECT deleted_by FROM run_deletions WHERE run_id = 'cli-gone'") == [("cli --data",)]
    missing = runstream("runs", "rename", "nope", "x", *data)
    assert missing.returncode == 1 and "no run 'nope'" in missing.stderr
