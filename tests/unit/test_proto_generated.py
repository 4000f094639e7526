"""The committed protobuf/gRPC modules under sdk/runstream/v1 are exactly what proto/generate.py makes
from the .proto files: this fails when someone edits a .proto and forgets to regenerate (or edits the
generated code by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
SDK_DIR = ROOT / "sdk"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def is_generated(path: Path) -> bool:
    return path.name.endswith(GENERATED_SUFFIXES)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    result = subprocess.run(
        [sys.executable, str(PROTO_DIR / "generate.py"), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"proto/generate.py failed:\n{result.stdout}\n{result.stderr}"
    return out


def relative_files(base: Path) -> set[Path]:
    return {p.relative_to(base) for p in base.rglob("*") if p.is_file() and is_generated(p)}


def test_every_proto_file_is_generated(regenerated: Path) -> None:
    protos = sorted(PROTO_DIR.rglob("*.proto"))
    assert protos, "no .proto files under proto/"
    for proto in protos:
        stem = proto.relative_to(PROTO_DIR).with_suffix("")
        for suffix in GENERATED_SUFFIXES:
            expected = stem.parent / f"{stem.name}{suffix}"
            assert (regenerated / expected).is_file(), f"{expected} was not generated from {proto}"


def test_committed_files_are_exactly_the_generated_ones(regenerated: Path) -> None:
    generated = relative_files(regenerated)
    committed = relative_files(SDK_DIR)
    assert generated, "proto/generate.py produced nothing"
    assert committed == generated, (
        f"missing from sdk/: {sorted(map(str, generated - committed))}; "
        f"stale in sdk/ (no .proto makes them): {sorted(map(str, committed - generated))}"
    )


def test_committed_files_are_byte_identical_to_the_generated_ones(regenerated: Path) -> None:
    differing = [
        str(rel)
        for rel in sorted(relative_files(regenerated))
        if not (SDK_DIR / rel).is_file() or (SDK_DIR / rel).read_bytes() != (regenerated / rel).read_bytes()
    ]
    assert not differing, f"regenerate with `python proto/generate.py`: these differ from the .proto files: {differing}"
