"""The spool's file format: round trip, torn tails, CRC, removal of acknowledged segments, budget."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from runstream import _spool
from runstream._spool import MAGIC, RECORD, Spool, SpoolLocked, find_spools, spool_path

HEADER = {"run_id": "r1", "writer_id": "w1", "project": "p", "name": "n", "config_json": "{}", "rank": 0}


def _new(tmp_path: Path, **kwargs: object) -> Spool:
    return Spool.create(spool_path(tmp_path, "r1", "w1"), dict(HEADER), **kwargs)  # type: ignore[arg-type]


def _payload(seq: int, size: int = 100) -> bytes:
    return bytes([seq % 251]) * size


def test_round_trip_in_seq_order(tmp_path: Path) -> None:
    spool = _new(tmp_path)
    for seq in (1, 2, 3, 5):
        spool.append(seq, _payload(seq))
    spool.append(4, _payload(4))  # a batch persisted late (the in-memory window) still replays in order
    spool.close()
    reopened = Spool.open(spool.path)
    assert reopened.header == HEADER
    assert reopened.pending() == [1, 2, 3, 4, 5]
    assert all(reopened.read(seq) == _payload(seq) for seq in range(1, 6))
    assert reopened.recovery.truncated_bytes == 0
    assert find_spools(tmp_path) == [spool.path]


def test_a_torn_tail_is_truncated_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = _new(tmp_path)
    for seq in range(1, 4):
        spool.append(seq, _payload(seq))
    spool.close()
    (segment,) = spool.path.glob("*.seg")
    whole = segment.stat().st_size
    with open(segment, "ab") as handle:  # the process died while writing record 4
        handle.write(RECORD.pack(100, 0, 4) + b"x" * 10)
    with caplog.at_level(logging.WARNING, "runstream"):
        reopened = Spool.open(spool.path)
    assert reopened.pending() == [1, 2, 3]
    assert reopened.recovery.truncated_bytes == RECORD.size + 10
    assert segment.stat().st_size == whole
    assert "cut short" in caplog.text
    reopened.append(4, _payload(4))  # appending after recovery works, and survives another reopen
    reopened.close()
    assert Spool.open(spool.path).pending() == [1, 2, 3, 4]


def test_a_header_cut_short_is_truncated(tmp_path: Path) -> None:
    spool = _new(tmp_path)
    spool.append(1, _payload(1))
    spool.close()
    (segment,) = spool.path.glob("*.seg")
    with open(segment, "ab") as handle:
        handle.write(b"\x01\x02\x03")
    reopened = Spool.open(spool.path)
    assert reopened.pending() == [1]
    assert reopened.recovery.truncated_bytes == 3


def test_a_crc_mismatch_is_detected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = _new(tmp_path)
    for seq in range(1, 4):
        spool.append(seq, _payload(seq))
    spool.close()
    (segment,) = spool.path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    second = len(MAGIC) + RECORD.size + 100  # where record 2 starts
    data[second + RECORD.size + 50] ^= 0xFF  # flip a byte of record 2's payload
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, "runstream"):
        reopened = Spool.open(spool.path)
    assert reopened.pending() == [1]  # the damaged record and what follows it cannot be trusted
    assert reopened.recovery.damaged_segments == [segment.name]
    assert "CRC mismatch" in caplog.text


def test_acknowledged_segments_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_spool, "SEGMENT_BYTES", 500)  # a new segment every few records
    spool = _new(tmp_path)
    for seq in range(1, 21):
        spool.append(seq, _payload(seq))
    segments = sorted(spool.path.glob("*.seg"))
    assert len(segments) > 3
    spool.ack(7)
    assert spool.pending() == list(range(8, 21))
    assert (spool.path / "acked").read_text() == "7"
    left = sorted(spool.path.glob("*.seg"))
    assert segments[0] not in left and len(left) < len(segments)
    spool.close()
    reopened = Spool.open(spool.path)  # the marker hides acknowledged records of a kept segment
    assert reopened.pending() == list(range(8, 21))
    reopened.ack(20)
    assert list(spool.path.glob("*.seg")) == [] and len(reopened) == 0
    reopened.remove()
    assert not spool.path.exists() and not spool.path.parent.exists()


def test_budget(tmp_path: Path) -> None:
    spool = _new(tmp_path, budget_bytes=1000, policy="drop")
    appended = 0
    while spool.has_room(100):
        appended += 1
        spool.append(appended, _payload(appended))
    assert 0 < spool.used_bytes() <= 1000 and appended == (1000 - len(MAGIC)) // (RECORD.size + 100)
    spool.ack(appended)  # acknowledged records free their room
    assert spool.has_room(100)
    with pytest.raises(ValueError, match="policy"):
        _new(tmp_path / "other", policy="spill")


def test_a_live_spool_is_locked(tmp_path: Path) -> None:
    spool = _new(tmp_path)
    spool.append(1, _payload(1))
    with pytest.raises(SpoolLocked):
        Spool.open(spool.path)
    spool.close()
    assert Spool.open(spool.path).pending() == [1]


def test_finish_record(tmp_path: Path) -> None:
    spool = _new(tmp_path)
    assert spool.finish_record() is None
    spool.mark_finished("failed", 12.5)
    assert json.loads((spool.path / "finish.json").read_text()) == {"status": "failed", "end_time": 12.5}
    assert spool.finish_record() == {"status": "failed", "end_time": 12.5}
