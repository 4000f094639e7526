"""`runstream sync DIR`: upload every spooled run under DIR (offline runs, and what a run left behind).

Each spool directory is one writer of one run (see _spool.py). Uploading it is OpenRun with the
header's fields, then the spooled batches in seq order through the same sender the SDK streams with,
keeping their writer id and seqs; the server acknowledges a (writer_id, seq) it has already committed
without writing it again, so running sync twice, or after a run that already sent part of its spool,
duplicates nothing. Acknowledged batches leave the spool; a spool whose batches are all acknowledged is
deleted, after FinishRun when the run recorded its end. A spool locked by a live process is skipped.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runstream._sender import Buffers, Sender, SenderLimits
from runstream._settings import resolve
from runstream._spool import Spool, SpoolLocked, find_spools
from runstream._transport import TransportError, for_settings
from runstream.v1 import ingest_pb2 as pb

logger = logging.getLogger("runstream")


@dataclass
class SyncResult:
    path: str
    run_id: str
    rank: int
    outcome: str  # "uploaded", "skipped" (in use), "failed", "incomplete"
    batches: int = 0  # acknowledged in this sync
    points: int = 0
    left_batches: int = 0  # still in the spool afterwards
    truncated_bytes: int = 0  # a torn or damaged tail cut off when opening the spool
    rejected_batches: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in ("uploaded", "skipped")


def sync(
    directory: str | os.PathLike[str] | None = None,
    *,
    server: str | None = None,
    token: str | None = None,
    connect_timeout: float = 10.0,
    timeout: float = 600.0,
) -> list[SyncResult]:
    """Upload every spool under `directory` (default RUNSTREAM_DIR); one result per spool."""
    root = Path(directory) if directory is not None else Path(resolve({}).dir)
    return [_sync_one(path, server, token, connect_timeout, timeout) for path in find_spools(root)]


def _sync_one(path: Path, server: str | None, token: str | None, connect_timeout: float, timeout: float) -> SyncResult:
    try:
        spool = Spool.open(path)
    except SpoolLocked:
        return SyncResult(str(path), path.parent.name, -1, "skipped", detail="in use by a live process")
    except (OSError, ValueError) as exc:
        return SyncResult(str(path), path.parent.name, -1, "failed", detail=f"unreadable spool: {exc}")
    header: dict[str, Any] = spool.header
    result = SyncResult(str(path), str(header["run_id"]), int(header["rank"]), "failed")
    result.truncated_bytes = spool.recovery.truncated_bytes
    if server is None and "RUNSTREAM_SERVER" not in os.environ:
        server = header.get("server") or None
    settings = resolve({"server": server, "token": token})
    transport = for_settings(settings)  # TLS, token and options as init() makes them
    try:
        request = pb.OpenRunRequest(
            project=header["project"],
            name=header["name"],
            config_json=header["config_json"],
            run_id=header["run_id"],
            rank=header["rank"],
            world_size=header["world_size"],
            host=header.get("host", ""),
            start_time=header.get("start_time", 0.0),
        )
        try:
            transport.open_run(request, timeout=connect_timeout, wait_for_ready=True)
        except TransportError as exc:
            result.detail = f"OpenRun on {settings.server}: {exc}"
            result.left_batches = len(spool)
            spool.close()
            return result
        limits = SenderLimits()
        sender = Sender(transport, request.run_id, request.rank, header["writer_id"], Buffers(), limits, spool=spool)
        sender.start()
        report = sender.close(timeout, keep_spool=True)
        result.batches, result.points = sender.acked_batches, sender.acked_points
        result.rejected_batches = report.rejected_batches
        result.left_batches = report.unsent_batches
        if report.unsent_batches:
            result.outcome = "incomplete"
            result.detail = report.last_error or f"not acknowledged within {timeout:.0f}s"
            return result
        finish = spool.finish_record()
        if finish is not None:
            try:
                transport.finish_run(
                    pb.FinishRunRequest(
                        run_id=request.run_id,
                        rank=request.rank,
                        status=str(finish.get("status", "finished")),
                        end_time=float(finish.get("end_time", 0.0)),
                    ),
                    timeout=connect_timeout,
                )
            except TransportError as exc:
                result.outcome = "incomplete"
                result.detail = f"FinishRun: {exc}"
                return result
        else:
            result.detail = "the run did not record its end (killed?); its status is left as it is"
        spool.remove()
        result.outcome = "uploaded"
        return result
    finally:
        transport.close()


def sync_in_background(directory: str, server: str, token: str) -> threading.Thread | None:
    """Upload spools left under `directory` by earlier processes (killed ones, say), on a daemon thread."""
    if not find_spools(directory):
        return None

    def work() -> None:
        try:
            for result in sync(directory, server=server, token=token):
                if result.outcome != "skipped":
                    logger.warning("runstream: spool left by an earlier process: %s", format_result(result))
        except Exception:  # pragma: no cover - never disturb the run
            logger.exception("runstream: uploading spools left by earlier processes failed")

    thread = threading.Thread(target=work, name="runstream-sync", daemon=True)
    thread.start()
    return thread


def format_result(result: SyncResult) -> str:
    text = f"{result.path}: run {result.run_id} rank {result.rank}: {result.outcome}"
    if result.batches or result.outcome in ("uploaded", "incomplete"):
        text += f", {result.points} points in {result.batches} batches sent"
    if result.left_batches:
        text += f", {result.left_batches} batches left in the spool"
    if result.truncated_bytes:
        text += f", {result.truncated_bytes} bytes of torn or damaged tail cut off"
    if result.rejected_batches:
        text += f", {result.rejected_batches} batches rejected by the server"
    if result.detail:
        text += f" ({result.detail})"
    return text
