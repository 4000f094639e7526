"""Security (README "Security") against real `runstream serve` processes.

The matrix: every token kind x every operation, each cell its own test with its expected outcome.
Then TLS (gRPC and HTTP over a self-signed certificate made here with openssl), the SDK with
RUNSTREAM_TOKEN end to end, a clear error for a token of the wrong scope, and the CLI's refusals.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

import runstream
from runstream.v1 import ingest_pb2 as pb
from runstream.v1 import ingest_pb2_grpc as pb_grpc
from support import ServerProcess, free_port

TIMEOUT = 20.0
TOKENS = {
    "read": "read-token-0123456789abcdef",
    "write:A": "write-a-token-0123456789abcdef",
    "write:*": "write-all-token-0123456789abcdef",
}
UNKNOWN = "unknown-token-0123456789abcdef"
TOKEN_FILE = """# runstream tokens: TOKEN SCOPE[,SCOPE...]
read-token-0123456789abcdef read

write-a-token-0123456789abcdef   write:A
   # an indented comment
write-all-token-0123456789abcdef write:*
both-token-0123456789abcdef read, write:B
"""
KINDS = ("none", "unknown", "read", "write:A", "write:*")


def secret(kind: str) -> str | None:
    return {"none": None, "unknown": UNKNOWN, **TOKENS}[kind]


def metadata(kind: str) -> tuple[tuple[str, str], ...]:
    token = secret(kind)
    return (("authorization", f"Bearer {token}"),) if token else ()


@pytest.fixture(autouse=True)
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTREAM_DIR", str(tmp_path / "spool"))  # whatever the SDK keeps on disk


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.txt"
    path.write_text(TOKEN_FILE)
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, token_file: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("auth") / "data", ("--tokens", str(token_file))).start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop()
    assert not any(token in process.log() for token in TOKENS.values()), "a token was logged"


@pytest.fixture(scope="module")
def stub(secured: ServerProcess) -> Iterator[pb_grpc.IngestStub]:
    channel = grpc.insecure_channel(secured.address)
    yield pb_grpc.IngestStub(channel)
    channel.close()


def open_run(stub: pb_grpc.IngestStub, project: str, kind: str = "write:*") -> str:
    request = pb.OpenRunRequest(project=project, name="m", run_id=uuid.uuid4().hex[:12], world_size=1)
    return str(stub.OpenRun(request, timeout=TIMEOUT, metadata=metadata(kind)).run_id)


def write_one(stub: pb_grpc.IngestStub, run_id: str, kind: str) -> pb.WriteAck:
    batch = pb.Batch(run_id=run_id, writer_id=uuid.uuid4().hex, seq=1, tags=["loss"])
    batch.scalars.CopyFrom(
        pb.Scalars(
            tag_index=np.zeros(1, "<u4").tobytes(),
            step=np.zeros(1, "<i8").tobytes(),
            wall_time=np.ones(1, "<f8").tobytes(),
            value=np.full(1, 0.5, "<f8").tobytes(),
        )
    )
    acks = list(stub.Write(iter([batch]), timeout=TIMEOUT, metadata=metadata(kind)))
    assert len(acks) == 1
    return acks[0]


# -- the matrix -------------------------------------------------------------------------------------

OK, UNAUTH, DENIED = "ok", "unauthenticated", "permission denied"
GRPC_CODES = {OK: None, UNAUTH: grpc.StatusCode.UNAUTHENTICATED, DENIED: grpc.StatusCode.PERMISSION_DENIED}
HTTP_CODES = {OK: 200, UNAUTH: 401, DENIED: 403}

#                      none     unknown  read     write:A  write:*
GRPC_MATRIX = {
    "OpenRun in A": (UNAUTH, UNAUTH, DENIED, OK, OK),
    "OpenRun in B": (UNAUTH, UNAUTH, DENIED, DENIED, OK),
    "Write to a run in A": (UNAUTH, UNAUTH, DENIED, OK, OK),
    "Write to a run in B": (UNAUTH, UNAUTH, DENIED, DENIED, OK),
    "FinishRun in A": (UNAUTH, UNAUTH, DENIED, OK, OK),
    "FinishRun in B": (UNAUTH, UNAUTH, DENIED, DENIED, OK),
}
HTTP_MATRIX = {  # read needs the scope `read`; a write token does not read
    "GET /api/runs": (UNAUTH, UNAUTH, OK, DENIED, DENIED),
    "POST /api/sql": (UNAUTH, UNAUTH, OK, DENIED, DENIED),
    "GET /metrics": (UNAUTH, UNAUTH, OK, DENIED, DENIED),
    "GET /healthz": (OK, OK, OK, OK, OK),
    "GET / (UI)": (UNAUTH, UNAUTH, OK, DENIED, DENIED),
    "GET /static/app.js": (UNAUTH, UNAUTH, OK, DENIED, DENIED),
}


def cells(matrix: dict[str, tuple[str, ...]]) -> list[Any]:
    return [
        pytest.param(operation, kind, expected, id=f"{operation} | {kind} -> {expected}")
        for operation, row in matrix.items()
        for kind, expected in zip(KINDS, row, strict=True)
    ]


def grpc_call(stub: pb_grpc.IngestStub, operation: str, kind: str) -> None:
    verb, _, project = operation.rpartition(" ")
    if verb == "OpenRun in":
        open_run(stub, project, kind)
    elif verb == "Write to a run in":
        write_one(stub, open_run(stub, project), kind)
    else:
        run_id = open_run(stub, project)
        request = pb.FinishRunRequest(run_id=run_id, rank=0, status="finished", end_time=2.0)
        stub.FinishRun(request, timeout=TIMEOUT, metadata=metadata(kind))


@pytest.mark.parametrize(("operation", "kind", "expected"), cells(GRPC_MATRIX))
def test_grpc_matrix(stub: pb_grpc.IngestStub, operation: str, kind: str, expected: str) -> None:
    code = GRPC_CODES[expected]
    if code is None:
        grpc_call(stub, operation, kind)
        return
    with pytest.raises(grpc.RpcError) as raised:
        grpc_call(stub, operation, kind)
    assert raised.value.code() == code, raised.value.details()
    details = raised.value.details() or ""
    assert secret(kind) is None or str(secret(kind)) not in details, "the token came back in the error"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        assert "write:" in details


def http(url: str, kind: str | None = None, body: Any = None, context: ssl.SSLContext | None = None) -> Any:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    token = secret(kind) if kind else None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize(("operation", "kind", "expected"), cells(HTTP_MATRIX))
def test_http_matrix(secured: ServerProcess, operation: str, kind: str, expected: str) -> None:
    method, path = operation.split()[:2]
    body = {"sql": "SELECT count(*) FROM runs"} if method == "POST" else None
    status, content = http(secured.http_url + path, kind, body)
    assert status == HTTP_CODES[expected], content[:300]
    if status in (401, 403):
        answer = json.loads(content)
        assert answer["status"] == status and answer["error"]
        assert str(secret(kind)) not in answer["error"]


# -- the browser's way in: /login sets a session cookie ----------------------------------------------


def test_login_sets_a_session_cookie_that_opens_the_dashboard(secured: ServerProcess) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as raised:
        opener.open(f"{secured.http_url}/login?token={TOKENS['read']}", timeout=TIMEOUT)
    assert raised.value.code == 303 and raised.value.headers["Location"] == "/"
    cookie = raised.value.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKENS["read"] not in cookie
    session = cookie.split(";", 1)[0]
    for path in ("/", "/api/runs", "/static/app.js"):
        request = urllib.request.Request(secured.http_url + path, headers={"Cookie": session})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            assert reply.status == 200, path
    forged = urllib.request.Request(secured.http_url + "/api/runs", headers={"Cookie": "runstream_session=forged"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(forged, timeout=TIMEOUT)
    assert raised.value.code == 401


@pytest.mark.parametrize(("token", "status"), [(UNKNOWN, 401), (TOKENS["write:A"], 403)])
def test_login_refuses_tokens_that_cannot_read(secured: ServerProcess, token: str, status: int) -> None:
    code, content = http(f"{secured.http_url}/login?token={token}")
    assert code == status and "Set-Cookie" not in content.decode()


def test_the_login_page_needs_no_token(secured: ServerProcess) -> None:
    status, content = http(f"{secured.http_url}/login")
    assert status == 200 and b"<form" in content


# -- the SDK --------------------------------------------------------------------------------------------


def test_sdk_with_runstream_token_logs_end_to_end(
    secured: ServerProcess, monkeypatch: pytest.MonkeyPatch, stub: pb_grpc.IngestStub
) -> None:
    monkeypatch.setenv("RUNSTREAM_TOKEN", TOKENS["write:A"])
    run = runstream.init(project="A", name="sdk", server=secured.address, connect_timeout=TIMEOUT)
    for step in range(100):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.log_image("sample", np.zeros((4, 4), np.uint8), step=0)
    report = run.finish(timeout=TIMEOUT)
    assert report.complete, report
    status, content = http(
        secured.http_url + "/api/sql", "read", {"sql": f"SELECT count(*) FROM scalars WHERE run_id = '{run.id}'"}
    )
    assert status == 200 and json.loads(content)["rows"] == [[100]]
    status, content = http(f"{secured.http_url}/api/images?run={run.id}&tag=sample", "read")
    url = json.loads(content)["images"][0]["url"]
    assert http(secured.http_url + url)[0] == 401
    request = urllib.request.Request(secured.http_url + url, headers={"Authorization": f"Bearer {TOKENS['read']}"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
        assert reply.headers["Cache-Control"].startswith("private"), "a shared cache could serve it to anyone"


def test_sdk_with_a_token_of_another_project_fails_clearly(secured: ServerProcess) -> None:
    with pytest.raises(runstream.AuthError, match=r"project 'B'.*write:B"):
        runstream.init(project="B", server=secured.address, token=TOKENS["write:A"], connect_timeout=TIMEOUT)


def test_sdk_with_a_read_token_or_none_fails_clearly(secured: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(runstream.AuthError, match="write:A"):
        runstream.init(project="A", server=secured.address, token=TOKENS["read"], connect_timeout=TIMEOUT)
    monkeypatch.delenv("RUNSTREAM_TOKEN", raising=False)
    with pytest.raises(runstream.AuthError, match="RUNSTREAM_TOKEN"):
        runstream.init(project="A", server=secured.address, connect_timeout=TIMEOUT)


def test_a_token_for_b_cannot_take_over_a_run_of_a(stub: pb_grpc.IngestStub) -> None:
    """Rejoining a run as rank 0 would move it to the request's project: that needs both projects."""
    both = (("authorization", "Bearer both-token-0123456789abcdef"),)
    run_id = open_run(stub, "A")
    request = pb.OpenRunRequest(project="B", name="hijack", run_id=run_id, world_size=1)
    with pytest.raises(grpc.RpcError) as raised:
        stub.OpenRun(request, timeout=TIMEOUT, metadata=both)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'A'" in (raised.value.details() or "")


def test_sql_cli_sends_runstream_token(secured: ServerProcess) -> None:
    command = [sys.executable, "-m", "runstream_service", "sql", "SELECT 42 AS x", "--url", secured.http_url]
    env = {k: v for k, v in os.environ.items() if k != "RUNSTREAM_TOKEN"}
    refused = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 1 and "token" in refused.stderr
    answered = subprocess.run(
        command, capture_output=True, text=True, env={**env, "RUNSTREAM_TOKEN": TOKENS["read"]}, timeout=60
    )
    assert answered.returncode == 0 and "42" in answered.stdout, answered.stderr


# -- TLS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, made now."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost"
    names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert), "-addext", names],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path], token_file: Path
) -> Iterator[ServerProcess]:
    cert, key = certificate
    args = ("--tokens", str(token_file), "--tls-cert", str(cert), "--tls-key", str(key))
    process = ServerProcess(tmp_path_factory.mktemp("tls") / "data", args).start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop()


def test_tls_round_trip(
    tls_server: ServerProcess, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, _ = certificate
    monkeypatch.setenv("RUNSTREAM_TLS_CA", str(cert))
    run = runstream.init(project="A", server=tls_server.address, token=TOKENS["write:*"], connect_timeout=TIMEOUT)
    for step in range(50):
        run.log({"acc": step / 50}, step=step)
    assert run.finish(timeout=TIMEOUT).complete

    context = ssl.create_default_context(cafile=str(cert))
    status, content = http(
        tls_server.http_url + "/api/sql",
        "read",
        {"sql": f"SELECT count(*) FROM scalars WHERE run_id = '{run.id}'"},
        context=context,
    )
    assert status == 200 and json.loads(content)["rows"] == [[50]]
    # Plain text is not served on either port.
    with pytest.raises(OSError):  # URLError, or the connection closed without an answer
        urllib.request.urlopen(f"http://127.0.0.1:{tls_server.http_port}/healthz", timeout=TIMEOUT)
    channel = grpc.insecure_channel(tls_server.address)
    with pytest.raises(grpc.RpcError) as raised:
        pb_grpc.IngestStub(channel).OpenRun(pb.OpenRunRequest(project="A"), timeout=5, metadata=metadata("write:*"))
    channel.close()
    assert raised.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_without_the_ca_the_certificate_is_not_trusted(
    tls_server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    channel = grpc.secure_channel(tls_server.address, grpc.ssl_channel_credentials())  # the system's CAs
    with pytest.raises(grpc.RpcError) as raised:
        pb_grpc.IngestStub(channel).OpenRun(pb.OpenRunRequest(project="A"), timeout=5, metadata=metadata("write:*"))
    channel.close()
    assert raised.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"{tls_server.http_url}/healthz", timeout=TIMEOUT)


# -- the command line -------------------------------------------------------------------------------


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "runstream_service", "serve", "--grpc", f"127.0.0.1:{free_port()}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_serve_refuses_a_bad_token_file_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("# ok\nsome-long-token-0123456789 read\nanother-long-token-0123456789 admin\n")
    result = serve("--tokens", str(path), "--http", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "line 3" in result.stderr and "unknown scope 'admin'" in result.stderr
    assert "another-long-token" not in result.stderr


def test_serve_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    result = serve("--http", f"0.0.0.0:{free_port()}", "--data", str(tmp_path / "d"))
    assert result.returncode == 2 and "--tokens" in result.stderr and "--insecure" in result.stderr


def test_serve_takes_a_public_address_with_tokens(tmp_path: Path, token_file: Path) -> None:
    process = ServerProcess(tmp_path / "data", ("--tokens", str(token_file)))
    process.extra_args = ("--tokens", str(token_file), "--http", f"0.0.0.0:{process.http_port}")
    process.start()
    try:
        assert process.health()["status"] == "ok"
    finally:
        process.stop()


def test_serve_needs_both_tls_files(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    result = serve("--tls-cert", str(certificate[0]), "--http", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "--tls-key" in result.stderr


def test_run_projects_survive_a_restart(tmp_path: Path, token_file: Path) -> None:
    """The project of each run is read back from the database at start, so the checks still hold."""
    process = ServerProcess(tmp_path / "data", ("--tokens", str(token_file))).start()
    try:
        channel = grpc.insecure_channel(process.address)
        run_id = open_run(pb_grpc.IngestStub(channel), "A")
        channel.close()
        process.stop()
        process.start()
        channel = grpc.insecure_channel(process.address)
        stub = pb_grpc.IngestStub(channel)
        assert write_one(stub, run_id, "write:A").seq == 1
        both = (("authorization", "Bearer both-token-0123456789abcdef"),)  # read, write:B
        request = pb.FinishRunRequest(run_id=run_id, rank=0, status="finished", end_time=2.0)
        with pytest.raises(grpc.RpcError) as raised:
            stub.FinishRun(request, timeout=TIMEOUT, metadata=both)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        channel.close()
    finally:
        process.stop()
