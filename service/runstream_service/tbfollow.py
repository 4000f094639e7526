"""Importing a TensorBoard log directory once, or following it while jobs write (`--follow`).

Where to read from is the server's word, not ours: every event file is its own writer (tbimport.py's
`file_writer_id`), and the server keeps, in the commit of each batch, the writer's seq and the file
offset where the batch's records end (Batch.source_offset). Before reading a file, the importer asks
for both (the GetProgress RPC) and reads on from that offset with the next seq. So an import that
is run again, a grown file, or a follower killed and restarted stores every point exactly once.

A pass looks for run directories and event files, reads what each file gained, and streams it. The
one-shot import is one pass, then each run that got points is finished. `--follow` makes a pass every
`interval` seconds: a record still being written (a truncated tail) is waited for, not reported; a run
is `running` from the pass that first gives it points until the follower stops, when it is finished
with the wall time of its last event (a restarted follower reopens it when its files grow again).

Left as they were: a run's hparams and first wall time are looked for in the first MiB of each file
(where the writers put them); a TF2 writer's tag whose metadata came before the offset a restarted
follower starts from, and beyond that first MiB, is read as a plain tensor.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import grpc
import numpy as np

from runstream._settings import resolve
from runstream._transport import GrpcTransport, TransportError
from runstream.v1 import ingest_pb2 as pb
from runstream_service.tbimport import (
    FileState,
    Points,
    RecordScanner,
    embedding_batches,
    file_writer_id,
    find_runs,
    read_points,
    run_id_from,
    to_batch,
)
from runstream_service.tbprojector import CONFIG_NAME, read_projector

PREFIX_BYTES = 1 << 20  # where a file's hparams and first wall time are looked for
PROGRESS_IDS_PER_CALL = 1_000
DEFAULT_INTERVAL = 2.0


class ImportTarget(Protocol):
    """The calls an import makes to a server (GrpcImportTransport; a fake in unit tests)."""

    def open_run(self, request: pb.OpenRunRequest, timeout: float, wait_for_ready: bool = False) -> Any: ...

    def write(self, requests: Iterator[pb.Batch]) -> Iterable[pb.WriteAck]: ...

    def finish_run(self, request: pb.FinishRunRequest, timeout: float) -> None: ...

    def get_progress(self, writer_ids: list[str], timeout: float) -> list[tuple[int, int]]: ...


class GrpcImportTransport(GrpcTransport):
    """The SDK's transport, plus GetProgress (only importers ask for it)."""

    def get_progress(self, writer_ids: list[str], timeout: float) -> list[tuple[int, int]]:
        """(seq, source_offset) of the last committed batch of each writer; (0, 0) for one the server lacks."""
        index, stub = self._stub()
        try:
            reply = stub.GetProgress(
                pb.GetProgressRequest(writer_id=writer_ids), timeout=timeout, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise self._failed(index, exc) from None
        return list(zip(reply.seq, reply.source_offset))


def connect_importer(server: str | None, token: str | None = None) -> GrpcImportTransport:
    """A transport as `runstream.init()` would make it (RUNSTREAM_TOKEN and RUNSTREAM_TLS_CA apply)."""
    settings = resolve({"server": server, "token": token})
    return GrpcImportTransport([settings.server], settings.token, settings.tls_ca)


@dataclass
class ImportedRun:
    """What one pass gave one run."""

    run_id: str
    name: str
    points: int
    written_batches: int
    duplicate_batches: int
    problems: list[str]
    skipped: int


@dataclass
class FileCursor:
    """Where reading one event file goes on: the offset after the last record sent, and that batch's seq."""

    path: Path
    writer_id: str
    offset: int
    seq: int
    state: FileState = field(default_factory=FileState)
    unreadable: bool = False  # a corrupt length: the rest of the file cannot be framed
    record_offset: bool = False  # imported by an older importer: a batch without points records `offset`


@dataclass
class RunCursor:
    name: str
    directory: Path
    run_id: str
    files: dict[str, FileCursor] = field(default_factory=dict)  # by file name
    hparams: dict[str, Any] | None = None
    first_wall: float = 0.0
    last_wall: float = 0.0
    config_sent: str | None = None  # the config of this process's last OpenRun
    running: bool = False  # opened by this process and not finished since
    projector_key: str = ""  # the projector folder's files when its embeddings were last sent

    def config(self) -> str:
        config: dict[str, Any] = {"imported_from": str(self.directory.resolve())}
        if self.hparams is not None:
            config["hparams"] = self.hparams
        return json.dumps(config)


@dataclass
class _Pass:
    """One run's share of a pass: counted while its batches are made and acknowledged."""

    points: int = 0
    skipped: int = 0
    written: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)


class Importer:
    """The runs under a log directory and how far each of their files has been imported."""

    def __init__(
        self,
        logdir: Path,
        project: str,
        target: ImportTarget,
        following: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        self.logdir = logdir
        self.project = project
        self.target = target
        self.following = following
        self.stop = stop or threading.Event()
        self.runs: dict[str, RunCursor] = {}

    def run_pass(self, advance: Callable[[int], None] | None = None) -> list[ImportedRun]:
        """Read and send what every run's files gained since the last pass; what each run got."""
        found = find_runs(self.logdir)
        self.discover(found)
        results = []
        for name, _, _ in found:
            if self.stop.is_set():
                break
            run = self.runs[name]
            try:
                results.append(self._send_run(run, advance))
            except TransportError:
                run.files.clear()  # where the server stands is asked again next pass
                run.projector_key = ""
                raise
        return results

    def pending_bytes(self) -> int:
        """Bytes the files hold beyond where they were imported (for a progress bar)."""
        total = 0
        for run in self.runs.values():
            for cursor in run.files.values():
                if not cursor.unreadable:
                    total += max(_size(cursor.path) - cursor.offset, 0)
        return total

    def finish(self, run: RunCursor) -> None:
        """Mark a run this process opened finished, at the wall time of its last event."""
        if run.running:
            self.target.finish_run(
                pb.FinishRunRequest(
                    run_id=run.run_id, rank=0, status="finished", end_time=run.last_wall or time.time()
                ),
                timeout=30,
            )
            run.running = False

    def finish_all(self) -> None:
        for run in self.runs.values():
            self.finish(run)

    # -- one pass -------------------------------------------------------------------

    def discover(self, found: list[tuple[str, Path, list[Path]]]) -> None:
        """Cursors for files not seen before, placed where the server says their import stopped."""
        new: list[tuple[RunCursor, Path]] = []
        for name, directory, files in found:
            run = self.runs.get(name)
            if run is None:  # the run id is fixed at first sight: a file sorted first later changes nothing
                run = self.runs[name] = RunCursor(name, directory, run_id_from(self.project, name, files[0]))
            new += [(run, path) for path in files if path.name not in run.files]
        ids = [file_writer_id(run.run_id, path) for run, path in new]
        progress = self._progress_of(ids)
        for (run, path), writer_id, (seq, offset) in zip(new, ids, progress):
            cursor = FileCursor(path, writer_id, offset, seq)
            if offset > _size(path):
                cursor.unreadable = True
                _warn(
                    run,
                    f"{path}: the file is shorter than when it was imported ({offset} bytes); it was "
                    "replaced or truncated, and is not read again",
                )
            self._read_prefix(run, cursor)
            run.files[path.name] = cursor
        self._adopt_earlier_imports({run.name: run for run, _ in new}.values())

    def _adopt_earlier_imports(self, runs: Iterable[RunCursor]) -> None:
        """Runs imported whole by an importer older than per-file writers (one writer for the run, named by
        its files' names and sizes): when those files are unchanged and the server knows none of their
        per-file writers, each file is recorded as imported up to its end, so nothing is stored again."""
        candidates = [r for r in runs if r.files and not any(c.seq or c.offset for c in r.files.values())]
        legacy = [_legacy_writer_id(run) for run in candidates]
        for run, (seq, _) in zip(candidates, self._progress_of(legacy)):
            if seq:
                for cursor in run.files.values():
                    cursor.offset = _size(cursor.path)
                    cursor.record_offset = True

    def _progress_of(self, writer_ids: list[str]) -> list[tuple[int, int]]:
        progress: list[tuple[int, int]] = []
        for start in range(0, len(writer_ids), PROGRESS_IDS_PER_CALL):
            progress += self._progress(writer_ids[start : start + PROGRESS_IDS_PER_CALL])
        return progress

    def _progress(self, writer_ids: list[str]) -> list[tuple[int, int]]:
        try:
            progress = self.target.get_progress(writer_ids, timeout=30)
        except TransportError as exc:
            if exc.code == "UNIMPLEMENTED":
                raise RuntimeError(
                    "the server does not report where an import stopped (GetProgress); upgrade the server "
                    "to import event files"
                ) from None
            raise
        if len(progress) != len(writer_ids):
            raise RuntimeError(f"the server answered GetProgress for {len(progress)} writers of {len(writer_ids)}")
        return progress

    def _read_prefix(self, run: RunCursor, cursor: FileCursor) -> None:
        """The file's first MiB: the run's hparams and first wall time, and (when reading starts further on)
        the plugins of the tags whose metadata TF2 writers send only once."""
        with open(cursor.path, "rb") as file:
            data = file.read(PREFIX_BYTES)
        state = FileState()
        scanner = RecordScanner(data, str(cursor.path), [], following=True)
        for points, _ in read_points(scanner, state):
            if points.hparams is not None:
                run.hparams = {**(run.hparams or {}), **points.hparams}
            if points.first_wall and (not run.first_wall or points.first_wall < run.first_wall):
                run.first_wall = points.first_wall
        if cursor.offset:
            cursor.state.plugins.update(state.plugins)
            cursor.state.graphs = state.graphs

    def _send_run(self, run: RunCursor, advance: Callable[[int], None] | None) -> ImportedRun:
        tally = _Pass()
        pending = [c for c in run.files.values() if c.record_offset or (not c.unreadable and _size(c.path) > c.offset)]
        projector = self._projector_batches(run, tally)
        adopted_only = projector is None and all(c.record_offset for c in pending)
        batches = self._batches(run, pending, projector, tally, advance)
        first = next(batches, None)  # none when the files gained only a record still being written
        if first is not None and adopted_only:  # the server keeps the offsets; the run stays as it was
            for _ in self.target.write(itertools.chain([first], batches)):
                pass
        elif first is not None:
            self._open(run)
            hparams_before = run.hparams
            for ack in self.target.write(itertools.chain([first], batches)):
                if ack.duplicate:
                    tally.duplicates += 1
                else:
                    tally.written += 1
            if run.hparams != hparams_before:
                self._open(run)  # hparams found in the new records: the run's config gets them
            if not self.following:
                self.finish(run)
        return ImportedRun(
            run.run_id, run.name, tally.points, tally.written, tally.duplicates, tally.problems, tally.skipped
        )

    def _open(self, run: RunCursor) -> None:
        config = run.config()
        if run.running and config == run.config_sent:
            return
        self.target.open_run(
            pb.OpenRunRequest(
                project=self.project,
                name=run.name,
                config_json=config,
                run_id=run.run_id,
                rank=0,
                world_size=1,
                host=socket.gethostname(),
                start_time=run.first_wall or time.time(),
            ),
            timeout=30,
            wait_for_ready=True,
        )
        run.config_sent = config
        run.running = True

    def _batches(
        self,
        run: RunCursor,
        pending: list[FileCursor],
        projector: Iterator[pb.Batch] | None,
        tally: _Pass,
        advance: Callable[[int], None] | None,
    ) -> Iterator[pb.Batch]:
        """The new records of each pending file, batch after batch, then the projector's; the cursors move as
        batches leave (on a failure the caller forgets them, and the next pass asks the server where it stands)."""
        for cursor in pending:
            if cursor.record_offset:
                cursor.seq += 1
                yield to_batch(Points(), run.run_id, cursor.writer_id, cursor.seq, cursor.offset)
                cursor.record_offset = False
                continue
            with open(cursor.path, "rb") as file:
                file.seek(cursor.offset)
                data = file.read()
            scanner = RecordScanner(
                data, str(cursor.path), tally.problems, base=cursor.offset, following=self.following
            )
            for points, end in read_points(scanner, cursor.state):
                self._count(run, points, tally)
                cursor.seq += 1
                yield to_batch(points, run.run_id, cursor.writer_id, cursor.seq, end)
                if advance is not None:
                    advance(end - cursor.offset)
                cursor.offset = end
                if self.stop.is_set():
                    return
            cursor.unreadable = scanner.unreadable
        if projector is not None:
            yield from projector

    def _count(self, run: RunCursor, points: Points, tally: _Pass) -> None:
        tally.points += points.points
        tally.skipped += points.skipped
        if points.hparams is not None:
            run.hparams = {**(run.hparams or {}), **points.hparams}
        first, last = points.wall_range()
        run.last_wall = max(run.last_wall, last)
        if first and not run.first_wall:
            run.first_wall = first

    def _projector_batches(self, run: RunCursor, tally: _Pass) -> Iterator[pb.Batch] | None:
        """The projector folder's embeddings not yet committed, under a writer named by the folder's files (so
        that they are sent again only when those change); None when there is nothing to send."""
        key = _projector_key(run.directory)
        if key == run.projector_key:
            return None
        run.projector_key = key
        if not key:
            return None
        writer_id = f"{run.run_id}-p-{key[:20]}"
        ((committed, _),) = self._progress([writer_id])
        embeddings = read_projector(run.directory, tally.problems)
        for embedding in embeddings:
            run.last_wall = max(run.last_wall, embedding.wall_time)
        left = (b for b in embedding_batches(embeddings, run.run_id, writer_id, 1) if b.seq > committed)
        first = next(left, None)
        if first is None:
            return None
        return self._counted(itertools.chain([first], left), tally)

    @staticmethod
    def _counted(batches: Iterator[pb.Batch], tally: _Pass) -> Iterator[pb.Batch]:
        for batch in batches:
            tally.points += int(np.frombuffer(batch.embeddings.rows, "<u4").sum())
            yield batch


def _projector_key(directory: Path) -> str:
    """A fingerprint of the projector folder (its config and the sizes of the files beside it), "" for none."""
    config = directory / CONFIG_NAME
    if not config.is_file():
        return ""
    digest = hashlib.sha256(config.read_bytes())
    for root, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            if "tfevents" not in name:
                path = Path(root) / name
                digest.update(f"\0{path.relative_to(directory)}:{_size(path)}".encode())
    return digest.hexdigest()


def _legacy_writer_id(run: RunCursor) -> str:
    """The writer id import-tensorboard gave a whole run before files had writers of their own."""
    fingerprint = "\0".join(f"{name}:{_size(c.path)}" for name, c in sorted(run.files.items()))
    return f"{run.run_id}-import-{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _warn(run: RunCursor, problem: str) -> None:
    print(f"runstream import-tensorboard: {run.name}: warning: {problem}", file=sys.stderr)


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.started = time.monotonic()

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.enabled:
            fraction = min(self.done / self.total, 1.0)
            bar = "#" * int(fraction * 30)
            mib = self.done / (1 << 20)
            sys.stderr.write(
                f"\rimporting [{bar:<30}] {fraction:6.1%} {mib:8.1f} MiB {time.monotonic() - self.started:6.1f}s"
            )
            sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def import_once(
    logdir: Path,
    project: str,
    server: str,
    token: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> list[ImportedRun]:
    """Import every run under `logdir` into the server at `server`; returns what each run got."""
    if not logdir.is_dir():
        raise FileNotFoundError(f"{logdir} is not a directory")
    if not find_runs(logdir):
        log(f"runstream import-tensorboard: no event files (*tfevents*) under {logdir}")
        return []
    transport = connect_importer(server, token)
    try:
        importer = Importer(logdir, project, transport)
        importer.discover(find_runs(logdir))
        bar = Progress(importer.pending_bytes(), sys.stderr.isatty() if progress is None else progress)
        try:
            results = importer.run_pass(bar.advance)
        finally:
            bar.end()
    finally:
        transport.close()
    for result in results:
        state = "imported" if result.points or result.written_batches else "already imported"
        log(
            f"{result.name}: {state} as run {result.run_id}: {result.points} points"
            + (f", {result.skipped} values of kinds runstream does not store skipped" if result.skipped else "")
        )
        for problem in result.problems:
            log(f"  warning: {problem}")
    return results


def follow(
    logdir: Path,
    project: str,
    server: str,
    token: str | None = None,
    interval: float = DEFAULT_INTERVAL,
    log: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Import `logdir` every `interval` seconds until `stop` is set (SIGINT and SIGTERM set it when this runs
    in the main thread); then finish the runs this follower opened. A server that goes away is waited for."""
    if not logdir.is_dir():
        raise FileNotFoundError(f"{logdir} is not a directory")
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop, log)
    transport = connect_importer(server, token)
    importer = Importer(logdir, project, transport, following=True, stop=stop)
    log(f"runstream import-tensorboard: following {logdir} every {interval:g} s; Ctrl-C stops")
    away = False
    try:
        while not stop.is_set():
            try:
                for result in importer.run_pass():
                    if result.points:
                        log(f"{result.name}: +{result.points} points (run {result.run_id})")
                    for problem in result.problems:
                        log(f"  warning: {result.name}: {problem}")
                if away:
                    log("runstream import-tensorboard: the server answers again")
                away = False
            except TransportError as exc:
                if not exc.unreachable:
                    raise
                if not away:
                    log(f"runstream import-tensorboard: the server is unreachable ({exc}); trying again")
                away = True
            stop.wait(interval)
        try:
            importer.finish_all()
        except TransportError as exc:
            log(f"runstream import-tensorboard: could not mark the followed runs finished: {exc}")
        log("runstream import-tensorboard: stopped")
    finally:
        restore()
        transport.close()


def _stop_on_signals(stop: threading.Event, log: Callable[[str], None]) -> Callable[[], None]:
    """SIGINT and SIGTERM set `stop` (a second SIGINT quits at once); returns what puts the handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        log("runstream import-tensorboard: stopping after the batch in flight (Ctrl-C again quits at once)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
