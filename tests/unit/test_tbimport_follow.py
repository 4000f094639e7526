"""The importer's resumption, against a fake server that keeps (seq, source_offset) per writer as the real
one does: a grown file is read from where the last pass stopped, a record still being written is waited
for, and a restarted (or crashed) importer stores every point exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from runstream._transport import TransportError
from runstream.tbcompat import event_pb2 as tb
from runstream.v1 import ingest_pb2 as pb
from runstream_service.tbfollow import Importer
from runstream_service.tbimport import frame_record

WALL0 = 1_700_000_000.0


@dataclass
class FakeServer:
    """Commits batches in order per writer, refuses gaps, acknowledges replays as duplicates."""

    progress: dict[str, tuple[int, int]] = field(default_factory=dict)
    scalars: list[tuple[str, int, float]] = field(default_factory=list)  # (tag, step, value)
    status: dict[str, str] = field(default_factory=dict)
    fail_after: int | None = None  # batches committed before the next Write call fails

    def open_run(self, request: pb.OpenRunRequest, timeout: float, wait_for_ready: bool = False) -> None:
        self.status[request.run_id] = "running"

    def finish_run(self, request: pb.FinishRunRequest, timeout: float) -> None:
        self.status[request.run_id] = request.status

    def get_progress(self, writer_ids: list[str], timeout: float) -> list[tuple[int, int]]:
        return [self.progress.get(w, (0, 0)) for w in writer_ids]

    def write(self, requests: Iterator[pb.Batch]) -> Iterator[pb.WriteAck]:
        for batch in requests:
            if self.fail_after is not None:
                if self.fail_after == 0:
                    self.fail_after = None
                    raise TransportError("UNAVAILABLE", "server went away")
                self.fail_after -= 1
            seq, _ = self.progress.get(batch.writer_id, (0, 0))
            if batch.seq <= seq:
                yield pb.WriteAck(writer_id=batch.writer_id, seq=batch.seq, duplicate=True)
                continue
            assert batch.seq == seq + 1, "a gap in a writer's seqs"
            tags = np.frombuffer(batch.scalars.tag_index, "<u4")
            steps = np.frombuffer(batch.scalars.step, "<i8")
            values = np.frombuffer(batch.scalars.value, "<f8")
            self.scalars += [(batch.tags[t], int(s), float(v)) for t, s, v in zip(tags, steps, values)]
            self.progress[batch.writer_id] = (batch.seq, batch.source_offset)
            yield pb.WriteAck(writer_id=batch.writer_id, seq=batch.seq)


def event(step: int) -> bytes:
    message = tb.Event(wall_time=WALL0 + step, step=step)
    message.summary.value.add(tag="loss", simple_value=float(step))
    return frame_record(message.SerializeToString())


def start_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(frame_record(tb.Event(wall_time=WALL0, file_version="brain.Event:2").SerializeToString()))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


def steps(server: FakeServer) -> list[int]:
    return [s for _, s, _ in server.scalars]


def test_a_grown_file_is_read_from_where_the_last_pass_stopped(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "run" / "events.out.tfevents.1.host"
    start_file(path)
    append(path, b"".join(event(s) for s in range(5)))
    server = FakeServer()
    importer = Importer(tmp_path / "logs", "p", server, following=True)
    (result,) = importer.run_pass()
    assert result.points == 5 and steps(server) == [0, 1, 2, 3, 4]
    assert importer.run_pass()[0].points == 0  # nothing new: nothing sent
    # A record still being written is waited for, not reported as corrupt.
    record = event(5)
    append(path, record[:7])
    (result,) = importer.run_pass()
    assert result.points == 0 and not result.problems
    append(path, record[7:] + event(6))
    assert importer.run_pass()[0].points == 2 and steps(server) == list(range(7))
    ((seq, offset),) = server.progress.values()
    assert offset == path.stat().st_size and seq == 2  # a batch per pass that found whole records
    assert set(server.status.values()) == {"running"}
    importer.finish_all()
    assert set(server.status.values()) == {"finished"}


def test_a_restarted_importer_stores_nothing_twice(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    first, second = logdir / "a" / "events.out.tfevents.1.h", logdir / "b" / "events.out.tfevents.1.h"
    for path in (first, second):
        start_file(path)
        append(path, b"".join(event(s) for s in range(3)))
    server = FakeServer()
    Importer(logdir, "p", server).run_pass()
    assert len(server.scalars) == 6 and set(server.status.values()) == {"finished"}
    again = Importer(logdir, "p", server).run_pass()  # a one-shot import, run again
    assert [r.points for r in again] == [0, 0] and len(server.scalars) == 6
    append(first, event(3))
    new_file = logdir / "a" / "events.out.tfevents.2.h"  # and a second file in a run
    start_file(new_file)
    append(new_file, event(10))
    results = Importer(logdir, "p", server).run_pass()
    assert [r.points for r in results] == [2, 0]
    assert sorted(steps(server)) == [0, 0, 1, 1, 2, 2, 3, 10]


def test_a_crash_mid_import_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runstream_service import tbimport

    monkeypatch.setattr(tbimport, "CHUNK_RECORDS", 10)
    monkeypatch.setattr(tbimport, "SCALARS_PER_BATCH", 10)  # a batch per 10 records
    logdir = tmp_path / "logs"
    path = logdir / "run" / "events.out.tfevents.1.h"
    start_file(path)
    append(path, b"".join(event(s) for s in range(95)))
    server = FakeServer(fail_after=4)
    importer = Importer(logdir, "p", server, following=True)
    with pytest.raises(TransportError):
        importer.run_pass()
    assert 0 < len(server.scalars) < 95
    importer.run_pass()  # the same importer: it asks the server where it stands again
    assert steps(server) == list(range(95))
    server.fail_after = 2
    append(path, b"".join(event(s) for s in range(95, 140)))
    with pytest.raises(TransportError):
        Importer(logdir, "p", server, following=True).run_pass()
    Importer(logdir, "p", server, following=True).run_pass()  # a new process
    assert steps(server) == list(range(140))


def test_a_corrupt_record_is_skipped_once(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "run" / "events.out.tfevents.1.h"
    start_file(path)
    bad = bytearray(event(1))
    bad[-6] ^= 0xFF  # in the data: its CRC no longer matches
    append(path, event(0) + bytes(bad) + event(2))
    server = FakeServer()
    importer = Importer(tmp_path / "logs", "p", server, following=True)
    (result,) = importer.run_pass()
    assert steps(server) == [0, 2] and len(result.problems) == 1 and "CRC" in result.problems[0]
    append(path, event(3))
    (result,) = importer.run_pass()
    assert steps(server) == [0, 2, 3] and not result.problems


def test_a_run_imported_by_the_older_importer_is_not_imported_again(tmp_path: Path) -> None:
    import hashlib

    from runstream_service.tbimport import file_writer_id, run_id_from

    path = tmp_path / "logs" / "run" / "events.out.tfevents.1.h"
    start_file(path)
    append(path, b"".join(event(s) for s in range(3)))
    run_id = run_id_from("p", "run", path)
    fingerprint = hashlib.sha256(f"{path.name}:{path.stat().st_size}".encode()).hexdigest()[:16]
    server = FakeServer(progress={f"{run_id}-import-{fingerprint}": (1, 0)}, status={run_id: "finished"})
    (result,) = Importer(tmp_path / "logs", "p", server).run_pass()
    assert result.points == 0 and server.scalars == [] and server.status[run_id] == "finished"
    assert server.progress[file_writer_id(run_id, path)] == (1, path.stat().st_size)
    append(path, event(3))
    Importer(tmp_path / "logs", "p", server).run_pass()
    assert steps(server) == [3]
