"""The disk spool: where batches wait when the server is away, slow, or not used (offline mode).

One directory per (run, writer) under RUNSTREAM_DIR:

    <dir>/<run_id>/<writer_id>/header.json   the OpenRun fields and the writer id (written once)
                              acked          highest acknowledged seq (written atomically)
                              finish.json    status and end time, once the run finished
                              lock           flock()ed by the process that owns the spool
                              <seq>.seg      segment files, named after their first record's seq

A segment starts with MAGIC, then records: length (u32 LE), CRC32 of the rest (u32 LE), seq (u64 LE),
payload (a serialized runstream.v1.Batch of `length` bytes). Records are appended and never
rewritten. A segment is deleted once every seq in it is acknowledged. On opening, a record that is
cut short or fails its CRC (the process was killed mid-write, or the disk lied) ends the segment: the
file is truncated there, and it is reported, never raised.

Used by one thread at a time (the sender thread, or `runstream sync`).
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import logging
import os
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

logger = logging.getLogger("runstream")

MAGIC = b"RSSPOOL1"
RECORD = struct.Struct("<IIQ")  # length, crc32(seq + payload), seq
SEQ = struct.Struct("<Q")
SEGMENT_BYTES = 64 << 20  # a new segment after this many bytes
MAX_RECORD_BYTES = 1 << 30
POLICIES = ("block", "drop")


class SpoolLocked(Exception):
    """Another live process owns this spool directory."""


@dataclass
class _Segment:
    path: Path
    size: int
    max_seq: int = 0
    records: int = 0


@dataclass
class Recovery:
    """What opening an existing spool found wrong, for the caller to report."""

    truncated_bytes: int = 0
    damaged_segments: list[str] = field(default_factory=list)


def spool_path(root: str | os.PathLike[str], run_id: str, writer_id: str) -> Path:
    return Path(root) / run_id / writer_id


def find_spools(root: str | os.PathLike[str]) -> list[Path]:
    """Every spool directory (one with a header) under `root`, oldest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = [p.parent for p in base.glob("*/*/header.json")]
    return sorted(found, key=lambda p: (p.joinpath("header.json").stat().st_mtime, str(p)))


class Spool:
    """An append-only, checksummed log of batches with an acknowledged-up-to marker."""

    def __init__(self, path: Path, header: dict[str, Any], budget_bytes: int, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"spool policy must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.path = path
        self.header = header
        self.budget_bytes = budget_bytes
        self.policy = policy
        self.acked = 0
        self.recovery = Recovery()
        self._segments: list[_Segment] = []
        self._index: dict[int, tuple[_Segment, int, int]] = {}  # seq -> segment, offset of payload, length
        self._heap: list[int] = []  # the seqs of _index, for acknowledging in order
        self._file: BinaryIO | None = None  # the segment being appended to (the last one)
        self._lock_file: BinaryIO | None = None

    # -- opening -------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, header: dict[str, Any], budget_bytes: int = 1 << 30, policy: str = "block") -> Spool:
        """A new spool (its directory must not hold one yet); locked by this process."""
        spool = cls(path, header, budget_bytes, policy)
        path.mkdir(parents=True, exist_ok=True)
        spool._lock()
        _write_atomic(path / "header.json", json.dumps(header, sort_keys=True).encode())
        return spool

    @classmethod
    def open(cls, path: Path, budget_bytes: int = 1 << 30, policy: str = "block", lock: bool = True) -> Spool:
        """An existing spool, recovered: torn or corrupt tails are truncated (see `recovery`)."""
        header = json.loads((path / "header.json").read_text())
        spool = cls(path, header, budget_bytes, policy)
        if lock:
            spool._lock()
        with contextlib.suppress(FileNotFoundError, ValueError):
            spool.acked = int((path / "acked").read_text().strip() or 0)
        for segment_path in sorted(path.glob("*.seg"), key=lambda p: int(p.stem)):
            spool._recover_segment(segment_path)
        spool._drop_acked_segments()
        return spool

    def _lock(self) -> None:
        handle = open(self.path / "lock", "ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise SpoolLocked(f"{self.path} is in use by a live process") from None
        self._lock_file = handle

    def _recover_segment(self, segment_path: Path) -> None:
        data = segment_path.read_bytes()
        segment = _Segment(segment_path, len(data))
        good = 0
        problem = ""
        if data[: len(MAGIC)] != MAGIC:
            problem = "bad magic"
        else:
            offset = len(MAGIC)
            good = offset
            while offset < len(data):
                if offset + RECORD.size > len(data):
                    problem = "record header cut short"
                    break
                length, crc, seq = RECORD.unpack_from(data, offset)
                start = offset + RECORD.size
                if length > MAX_RECORD_BYTES or start + length > len(data):
                    problem = "record cut short"
                    break
                if zlib.crc32(data[offset + 8 : start + length]) != crc:
                    problem = "CRC mismatch"
                    break
                segment.records += 1
                segment.max_seq = max(segment.max_seq, seq)
                if seq > self.acked and seq not in self._index:
                    self._index[seq] = (segment, start, length)
                    heapq.heappush(self._heap, seq)
                offset = start + length
                good = offset
        if problem:
            cut = len(data) - good
            self.recovery.truncated_bytes += cut
            self.recovery.damaged_segments.append(segment_path.name)
            logger.warning(
                "runstream: spool segment %s: %s at byte %d; truncated %d bytes (a write the process did not "
                "finish, or a damaged file); the %d records before it are kept",
                segment_path,
                problem,
                good,
                cut,
                segment.records,
            )
            if good == 0:
                segment_path.unlink()
                return
            with open(segment_path, "r+b") as handle:
                handle.truncate(good)
            segment.size = good
        self._segments.append(segment)

    # -- writing -------------------------------------------------------------

    def used_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def has_room(self, size: int) -> bool:
        return self.used_bytes() + RECORD.size + size <= self.budget_bytes

    def append(self, seq: int, payload: bytes) -> None:
        """Write one record (handed to the OS at once: it survives SIGKILL of this process)."""
        if seq in self._index or seq <= self.acked:
            return
        if self._file is None or self._segments[-1].size >= SEGMENT_BYTES:
            self._roll(seq)
        assert self._file is not None
        segment = self._segments[-1]
        seq_bytes = SEQ.pack(seq)
        record = struct.pack("<II", len(payload), zlib.crc32(payload, zlib.crc32(seq_bytes))) + seq_bytes
        _write_all(self._file, record)
        _write_all(self._file, payload)
        self._index[seq] = (segment, segment.size + RECORD.size, len(payload))
        heapq.heappush(self._heap, seq)
        segment.records += 1
        segment.max_seq = max(segment.max_seq, seq)
        segment.size += RECORD.size + len(payload)

    def _roll(self, seq: int) -> None:
        if self._file is not None:
            self._file.close()
        path = self.path / f"{seq:020d}.seg"
        self._file = open(path, "xb", buffering=0)  # unbuffered: nothing for a forked child to flush twice
        _write_all(self._file, MAGIC)
        self._segments.append(_Segment(path, len(MAGIC)))

    def sync(self) -> None:
        """fsync the open segment (for power loss; SIGKILL needs only the flush `append` does)."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    # -- reading and acknowledging ------------------------------------------

    def pending(self) -> list[int]:
        """Seqs written and not acknowledged, ascending."""
        return sorted(self._index)

    def __contains__(self, seq: int) -> bool:
        return seq in self._index

    def __len__(self) -> int:
        return len(self._index)

    def read(self, seq: int) -> bytes:
        segment, offset, length = self._index[seq]
        with open(segment.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def ack(self, seq: int) -> list[int]:
        """Every seq up to `seq` is committed (or rejected for good): forget those records; return them."""
        if seq <= self.acked:
            return []
        self.acked = seq
        done = []
        heap = self._heap
        while heap and heap[0] <= seq:
            done.append(heapq.heappop(heap))
        if not done:
            return done
        for s in done:
            del self._index[s]
        _write_atomic(self.path / "acked", str(seq).encode())
        self._drop_acked_segments()
        return done

    def _drop_acked_segments(self) -> None:
        keep = []
        for segment in self._segments:
            if segment.max_seq <= self.acked:
                if segment is self._segments[-1] and self._file is not None:
                    self._file.close()
                    self._file = None
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
            else:
                keep.append(segment)
        self._segments = keep

    # -- finishing -------------------------------------------------------------

    def mark_finished(self, status: str, end_time: float) -> None:
        _write_atomic(self.path / "finish.json", json.dumps({"status": status, "end_time": end_time}).encode())

    def finish_record(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.path / "finish.json").read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def remove(self) -> None:
        """Delete the spool directory (everything in it was delivered), and its run's if now empty."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def _write_all(file: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
