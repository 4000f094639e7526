"""The service's one error tree: every error a caller may cause carries its HTTP status and gRPC code.

Code deep in the store (a query, the SQL checks, a token lookup) raises one of these with a message that
tells the user what to do; it does not know whether HTTP or gRPC will carry it. Each side translates in
one place: the HTTP app's middleware (runstream_dashboards.errors) renders `{"error", "status"}` JSON,
and the gRPC service aborts with `grpc_status(error)`. Anything else that escapes is a bug of ours:
HTTP 500 or gRPC INTERNAL, with the details in the server's log.
"""

from __future__ import annotations

import grpc


class RunstreamError(Exception):
    """Base of the errors a caller may cause; subclasses set `http_status` and `grpc_code`."""

    http_status: int = 500
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    @property
    def status(self) -> int:
        """`http_status` under the name the SQL checks' callers and tests have used."""
        return self.http_status


class BadRequest(RunstreamError):
    """The request is malformed or a parameter is out of range; the message names which and why."""

    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RunstreamError, LookupError):
    """No such run, tag, image, ... (or the web UI is not built)."""

    http_status = 404
    grpc_code = grpc.StatusCode.NOT_FOUND


class TooLarge(RunstreamError, ValueError):
    """The answer would be larger than the caller allows; the message says how to ask for less.

    HTTP 400, not 413: it is the answer that is too large, not the request.
    """

    http_status = 400
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class AuthError(RunstreamError):
    """A call that may not proceed: no token, an unknown one, or one without the needed scope."""

    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class Unauthenticated(AuthError):
    """No token, or one that is not in the token file (or an expired session)."""


class PermissionDenied(AuthError):
    """A known token that lacks the scope the call needs."""

    http_status = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


def grpc_status(error: RunstreamError) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and details that carry `error` to the caller."""
    return error.grpc_code, str(error)
