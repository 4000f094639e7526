"""Visdom over gRPC (runstream.visdom.Visdom): calls that travel in batches, and the VisdomRead RPC.

A batch's `visdom_calls` carry the JSON bodies the visdom client would POST. They are parsed as the
HTTP endpoints parse them (protocol.py), when the batch is decoded, so a malformed call rejects its
batch before anything is written. Their writes (storage.py's) run inside the batch's own commit, with
its (writer_id, seq), so a replayed batch is acknowledged without applying its calls twice. A call
that finds nothing to act on (an update of a window that does not exist, the fork of a missing env)
is skipped with a warning in the server's log, as its HTTP twin answers 404 and changes nothing; it
does not take the rest of its batch with it.

VisdomRead's answers are answers.py's, as the HTTP endpoints' are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from runstream.v1 import ingest_pb2 as pb
from runstream_service.errors import BadRequest, NotFound
from runstream_service.store.base import Transaction
from runstream_service.visdom import protocol, storage

logger = logging.getLogger("runstream.visdom")

MAX_CALLS_PER_BATCH = 10_000


@dataclass(frozen=True)
class ParsedCall:
    """One call, parsed: its endpoint, the env and window it changes (None: the whole env), and its
    request record (protocol.py)."""

    endpoint: str
    env: str
    win: str | None
    request: Any


def parse_calls(calls: Sequence[pb.VisdomCall]) -> tuple[ParsedCall, ...]:
    """Parse every call as its HTTP endpoint would; BadRequest names the call that is wrong."""
    if len(calls) > MAX_CALLS_PER_BATCH:
        raise BadRequest(f"visdom_calls: {len(calls)} calls, more than {MAX_CALLS_PER_BATCH} in one batch")
    parsed = []
    for i, call in enumerate(calls):
        try:
            parsed.append(_parse(call.endpoint, protocol.parse_body(call.body)))
        except BadRequest as exc:
            raise BadRequest(f"visdom_calls[{i}] ({call.endpoint}): {exc}") from None
    return tuple(parsed)


def _parse(endpoint: str, body: dict[str, Any]) -> ParsedCall:
    if endpoint == "events":
        post = protocol.window_post(body)
        if post.win is None:
            raise BadRequest("'win' is missing: runstream.visdom.Visdom names every window it makes")
        return ParsedCall(endpoint, post.env, post.win, post)
    if endpoint == "update":
        update = protocol.update_post(body)
        return ParsedCall(endpoint, update.env, update.win, update)
    if endpoint == "close":
        ref = protocol.window_ref(body)
        return ParsedCall(endpoint, ref.env, ref.win, ref)
    if endpoint == "delete_env":
        env = protocol.env_of(body)
        return ParsedCall(endpoint, env, None, env)
    if endpoint == "fork_env":
        fork = protocol.fork_env(body)
        return ParsedCall(endpoint, fork.target, None, fork)
    if endpoint == "win_data":
        if "data" not in body:
            raise BadRequest("a batched win_data call sets windows ('data'); read them with VisdomRead")
        given = protocol.set_window_data(body)
        return ParsedCall(endpoint, given.env, given.win, given)
    if endpoint.startswith("env/"):
        env = protocol.env_of({"eid": body.get("eid", endpoint[len("env/") :])})
        return ParsedCall("env", env, None, env)
    raise BadRequest(
        f"unknown endpoint {endpoint!r}; batched calls go to events, update, close, delete_env, fork_env, "
        "win_data (with data) or env/ENV"
    )


@dataclass(frozen=True)
class CallWrite(Transaction):
    """A call's write, run inside its batch's commit (store/file.py), and the window it changes."""

    env: str = ""
    win: str | None = None


def transactions(writes: storage.VisdomWrites, calls: Sequence[ParsedCall]) -> tuple[Transaction, ...]:
    """The calls' writes (built on the event loop; new windows' documents are checked here, so a bad
    one rejects the batch before it is queued), between the two that defer their new points and insert
    them in one statement."""
    return (writes.defer_points(), *(_write(writes, call) for call in calls), writes.insert_deferred_points())


def _write(writes: storage.VisdomWrites, call: ParsedCall) -> CallWrite:
    request = call.request
    if call.endpoint == "events":
        transaction = writes.post_window(request)
    elif call.endpoint == "update":
        transaction = writes.update(request)
    elif call.endpoint == "close":
        transaction = writes.close(request.env, request.win)
    elif call.endpoint == "delete_env":
        transaction = writes.delete_env(request)
    elif call.endpoint == "fork_env":
        transaction = writes.fork_env(request)
    elif call.endpoint == "win_data":
        transaction = writes.set_window_data(request)
    else:
        transaction = writes.create_env(request)
    work = transaction.work

    def skipping_missing(con: duckdb.DuckDBPyConnection) -> None:
        try:
            work(con)
        except NotFound as exc:  # raised before the call wrote anything: the rest of the batch goes on
            logger.warning("a batched Visdom call (%s) was skipped: %s", call.endpoint, exc)

    return CallWrite(skipping_missing, on_rollback=transaction.on_rollback, env=call.env, win=call.win)


async def committed(visdom: Any, calls: Sequence[Transaction]) -> None:
    """After a batch's calls (CallWrites) committed: the touched envs' windows, read back into the HTTP
    side's index (win_exists answers from it), and change marks for the web UI's live updates.
    `visdom` is routes.Visdom."""
    writes = [call for call in calls if isinstance(call, CallWrite)]
    envs = sorted({write.env for write in writes})
    found = await visdom.reader.run(lambda cur: storage.windows_of(cur, envs))
    for env in envs:
        visdom.replaced(env, sorted(found[env]) if env in found else None)
    for write in writes:
        visdom.changes.mark(write.env, write.win)


__all__ = ["CallWrite", "ParsedCall", "committed", "parse_calls", "transactions"]
