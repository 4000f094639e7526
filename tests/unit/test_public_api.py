"""The SDK's public surface is small and deliberate: changing it should be a decision, not an accident."""

from __future__ import annotations

import subprocess
import sys

import runstream
import runstream.tensorboard


def test_exported_members() -> None:
    assert sorted(runstream.__all__) == [
        "AuthError",
        "ForkedProcessError",
        "QueryError",
        "Run",
        "RunFinishedError",
        "RunstreamError",
        "SendReport",
        "ServerUnavailableError",
        "history",
        "init",
        "query",
        "runs",
    ]
    for name in runstream.__all__:
        assert getattr(runstream, name).__module__.startswith("runstream")
    assert runstream.tensorboard.__all__ == ["SummaryWriter", "tensorflow_bins"]


def test_every_sdk_error_is_a_runstream_error() -> None:
    for name in ("AuthError", "ForkedProcessError", "QueryError", "RunFinishedError", "ServerUnavailableError"):
        assert issubclass(getattr(runstream, name), runstream.RunstreamError)


def test_the_sdk_does_not_import_the_server_side() -> None:
    # A training job installs no DuckDB, aiohttp or uvloop: importing the SDK must not need them.
    code = (
        "import sys, runstream, runstream.tensorboard; "
        "print(sorted(m for m in ('duckdb', 'aiohttp', 'uvloop', 'pyarrow', 'runstream_service') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
