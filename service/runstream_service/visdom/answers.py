"""What Visdom's read endpoints answer, for its HTTP endpoints (routes.py) and for the gRPC VisdomRead
of runstream.visdom.Visdom (ingest.py): the same text, from the same window index and reads."""

from __future__ import annotations

from typing import Any

from runstream_service.errors import BadRequest, NotFound
from runstream_service.visdom import protocol, storage

READS = ("win_exists", "win_data", "win_hash", "env_state", "save")


async def answer(visdom: Any, endpoint: str, body: dict[str, Any]) -> str:
    """The reply of read `endpoint` to `body` (`visdom` is routes.Visdom: its index and reader)."""
    if endpoint == "env_state":
        return protocol.dumps(sorted(visdom.index))
    if endpoint == "save":  # every window is committed when made: save names the envs that exist
        known = visdom.index
        return protocol.dumps([env for env in protocol.save_envs(body) if env in known])
    if endpoint not in READS:
        raise BadRequest(f"unknown read {endpoint!r}; one of {', '.join(READS)}")
    ref = protocol.window_ref(body)  # the client sends 'env' to win_hash too, but Visdom reads 'eid'
    if endpoint == "win_exists":
        return protocol.boolean(ref.win is not None and ref.win in visdom.index.get(ref.env, ()))
    win = ref.win
    if endpoint == "win_hash":
        if win is None:
            return "false"
        found = await visdom.reader.run(lambda cur: storage.window_hash(cur, ref.env, win))
        return found or "false"
    windows = await visdom.reader.run(lambda cur: storage.windows(cur, ref.env, win))
    if win is None:
        return protocol.dumps(windows)
    if win not in windows:
        raise NotFound(f"Window {win} doesn't exist in env {ref.env}")  # Visdom's words
    return protocol.dumps(windows[win])
