"""Every error a caller may cause is in the service's one tree, with the status each side sends."""

from __future__ import annotations

import grpc
import pytest

from runstream_service.errors import RunstreamError, grpc_status
from runstream_service.store.base import UnknownRun
from runstream_service.store.readonly_sql import ReadOnlySqlError
from runstream_service.validate import InvalidBatch


@pytest.mark.parametrize(
    ("error", "http", "code"),
    [
        (InvalidBatch("scalars.step", "steps must be >= 0, got -1"), 400, grpc.StatusCode.INVALID_ARGUMENT),
        (UnknownRun("run 'x' is not open"), 404, grpc.StatusCode.NOT_FOUND),
    ],
)
def test_store_and_validation_errors_carry_their_statuses(
    error: RunstreamError, http: int, code: grpc.StatusCode
) -> None:
    assert isinstance(error, RunstreamError)
    assert error.http_status == http
    assert grpc_status(error) == (code, str(error))


def test_invalid_batch_names_its_field_and_is_still_a_value_error() -> None:
    error = InvalidBatch("scalars.step", "steps must be >= 0, got -1")
    assert str(error) == "scalars.step: steps must be >= 0, got -1"
    assert isinstance(error, ValueError) and error.field == "scalars.step"


def test_read_only_sql_errors_are_in_the_tree() -> None:
    assert issubclass(ReadOnlySqlError, RunstreamError)
