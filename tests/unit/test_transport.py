"""The SDK's transport seam: the error record the sender decides on, failover, and who imports whom."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

import runstream
from runstream._transport import (
    MAX_RETRY_AFTER,
    REJECTED_SEQ_KEY,
    RETRY_AFTER_KEY,
    GrpcTransport,
    TransportError,
)
from runstream.v1 import ingest_pb2 as pb

SDK = Path(runstream.__file__).parent


def test_transport_error_carries_the_retry_hint_capped_and_the_rejected_seq() -> None:
    busy = TransportError("RESOURCE_EXHAUSTED", "behind", {RETRY_AFTER_KEY: "2.5"})
    assert busy.retry_after == 2.5 and busy.rejected_seq is None and not busy.unreachable
    assert str(busy) == "RESOURCE_EXHAUSTED: behind"
    assert TransportError("RESOURCE_EXHAUSTED", "", {RETRY_AFTER_KEY: "3600"}).retry_after == MAX_RETRY_AFTER
    assert TransportError("RESOURCE_EXHAUSTED", "", {RETRY_AFTER_KEY: "-1"}).retry_after == 0.0
    assert TransportError("RESOURCE_EXHAUSTED", "", {RETRY_AFTER_KEY: "soon"}).retry_after is None
    assert TransportError("INVALID_ARGUMENT", "bad", {REJECTED_SEQ_KEY: "7"}).rejected_seq == 7
    assert TransportError("INVALID_ARGUMENT", "bad", {REJECTED_SEQ_KEY: "x"}).rejected_seq is None
    assert TransportError("UNAVAILABLE", "").unreachable and TransportError("DEADLINE_EXCEEDED", "").unreachable


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_grpc_transport_moves_to_the_next_address_on_unavailable() -> None:
    first, second = _closed_port(), _closed_port()
    transport = GrpcTransport([first, second])
    try:
        assert transport.server == first
        with pytest.raises(TransportError) as raised:
            transport.open_run(pb.OpenRunRequest(project="p", run_id="r"), timeout=10.0)
        assert raised.value.code == "UNAVAILABLE"
        assert transport.server == second
    finally:
        transport.close()


def test_grpc_transport_says_which_tls_ca_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RUNSTREAM_TLS_CA"):
        GrpcTransport(["127.0.0.1:1"], tls_ca=str(tmp_path / "missing.pem"))


def _imports(module: str) -> set[str]:
    tree = ast.parse((SDK / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_run_and_sync_do_not_import_each_other_and_only_the_transport_imports_grpc() -> None:
    assert "runstream._run" not in _imports("_sync")
    for module in ("_run", "_sync", "_sender"):
        assert not {"grpc", "runstream.v1.ingest_pb2_grpc"} & _imports(module), module
    assert "grpc" in _imports("_transport")
