"""The reads behind GetProgress and ReadScalars (store/ingest_reads.py) on a DuckDB file written by a FileStore."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from runstream.v1 import ingest_pb2 as pb
from runstream_service.store import ingest_reads
from runstream_service.store.base import OpenRun
from runstream_service.store.file import FileStore
from runstream_service.validate import decode_batch


def scalars(writer: str, seq: int, tags: list[str], points: list[tuple[int, int, float]], offset: int = 0) -> pb.Batch:
    """points: (tag index, step, value)."""
    return pb.Batch(
        run_id="r",
        writer_id=writer,
        seq=seq,
        tags=tags,
        source_offset=offset,
        scalars=pb.Scalars(
            tag_index=np.asarray([t for t, _, _ in points], "<u4").tobytes(),
            step=np.asarray([s for _, s, _ in points], "<i8").tobytes(),
            wall_time=np.asarray([float(s) for _, s, _ in points], "<f8").tobytes(),
            value=np.asarray([v for _, _, v in points], "<f8").tobytes(),
        ),
    )


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "runstream.duckdb"))
    store = FileStore(con)
    store.open_run(OpenRun("r", "p", "r", "{}", 0, 1, "h", 0.0))
    store.append([decode_batch(scalars("a", 1, ["y", "x"], [(0, 5, 0.5), (1, 2, 2.0), (0, 1, 0.1)], 40))], {"a": 1})
    store.append([decode_batch(scalars("b", 7, ["x"], [(0, 1, 1.0), (0, 3, float("nan"))]))], {"b": 7})
    # The compactor moves points to scalar_points; the view reads both tables.
    con.execute("INSERT INTO scalar_points SELECT *, 0 FROM scalar_points_hot WHERE step = 2")
    con.execute("DELETE FROM scalar_points_hot WHERE step = 2")
    return con


def test_progress_in_the_order_asked(con: duckdb.DuckDBPyConnection) -> None:
    assert ingest_reads.progress(con, ["b", "nobody", "a"]) == [(7, 0), (0, 0), (1, 40)]
    assert ingest_reads.progress(con, []) == []


def test_series_by_tag_and_rank_in_step_order(con: duckdb.DuckDBPyConnection) -> None:
    chunks = ingest_reads.scalar_series(con, "r")
    assert [(c.tag, c.rank, c.step.tolist()) for c in chunks] == [("x", 0, [1, 2, 3]), ("y", 0, [1, 5])]
    assert chunks[0].value[:2].tolist() == [1.0, 2.0] and np.isnan(chunks[0].value[2])
    assert ingest_reads.scalar_series(con, "other") == []


def test_a_long_series_comes_in_chunks(con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_reads, "MAX_SERIES_POINTS", 2)
    chunks = ingest_reads.scalar_series(con, "r")
    assert [(c.tag, c.step.tolist()) for c in chunks] == [("x", [1, 2]), ("x", [3]), ("y", [1, 5])]
