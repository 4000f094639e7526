"""The SDK's exceptions: one tree, rooted at RunstreamError."""

from __future__ import annotations


class RunstreamError(Exception):
    """Base class of every error the runstream SDK raises."""


class ServerUnavailableError(RunstreamError):
    """The runstream server could not be reached (at `init`, or when finishing a run)."""


class AuthError(RunstreamError):
    """The server refused the token (unknown, or without the scope `write:PROJECT` for this run)."""


class RunFinishedError(RunstreamError):
    """Logging to a run after `finish()`; start a new run with `runstream.init()`."""


class ForkedProcessError(RunstreamError):
    """Logging from a forked child through its parent's run; call `runstream.init()` in the child."""
