"""The two reads the Ingest service answers (GetProgress, ReadScalars), as plain functions of a DuckDB cursor.

They run on a reader's cursor (store/reader.py), never on the writer thread, and see committed data
only: an importer asking where it stopped gets what a commit recorded, not what is queued.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np

# At most this many points per ScalarSeries message (24 bytes each: 24 MB, under gRPC's 64 MiB); a longer
# series comes as several consecutive messages of the same tag and rank.
MAX_SERIES_POINTS = 1_000_000


def progress(con: duckdb.DuckDBPyConnection, writer_ids: Sequence[str]) -> list[tuple[int, int]]:
    """(seq, source_offset) of each writer id asked, in order; (0, 0) for a writer the store does not know."""
    if not writer_ids:
        return []
    rows = con.execute(
        "SELECT writer_id, seq, coalesce(source_offset, 0) FROM writer_progress WHERE writer_id IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [list(writer_ids)],
    ).fetchall()
    known = {writer: (int(seq), int(offset)) for writer, seq, offset in rows}
    return [known.get(writer, (0, 0)) for writer in writer_ids]


@dataclass(frozen=True)
class SeriesChunk:
    tag: str
    rank: int
    step: np.ndarray  # int64, ascending
    wall_time: np.ndarray  # float64
    value: np.ndarray  # float64


def scalar_series(con: duckdb.DuckDBPyConnection, run_id: str) -> list[SeriesChunk]:
    """Every scalar of a run through the `scalars` view (hot and compacted points alike), one chunk per tag and
    rank (more for a series longer than MAX_SERIES_POINTS), each in step order."""
    columns = con.execute(
        "SELECT tag, rank, step, wall_time, value FROM scalars WHERE run_id = ? ORDER BY tag, rank, step, wall_time",
        [run_id],
    ).fetchnumpy()
    tags, ranks = np.asarray(columns["tag"]), np.asarray(columns["rank"])
    if not len(tags):
        return []
    step, wall_time, value = (np.asarray(columns[name]) for name in ("step", "wall_time", "value"))
    changes = np.flatnonzero((tags[1:] != tags[:-1]) | (ranks[1:] != ranks[:-1])) + 1
    bounds = [0, *changes.tolist(), len(tags)]
    chunks = []
    for start, end in itertools.pairwise(bounds):
        for lo in range(start, end, MAX_SERIES_POINTS):
            hi = min(lo + MAX_SERIES_POINTS, end)
            chunks.append(SeriesChunk(str(tags[lo]), int(ranks[lo]), step[lo:hi], wall_time[lo:hi], value[lo:hi]))
    return chunks
