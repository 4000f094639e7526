"""Reading stored embeddings back whole: what the Projector computes on. No HTTP here.

An embedding is the points a run logged under one tag at one step (`Run.log_embedding`,
`SummaryWriter.add_embedding`): rows of `embedding_points` with idx 0..total_rows-1, which arrive in
chunks, so an embedding whose last chunks have not arrived yet is listed as not `complete`. When
several ranks logged the same tag and step, the lowest rank's is read (the usual case is rank 0 alone);
when a rank logged the same tag and step again (tensorboardX overwrites the folder then), the newest
(by wall_time, one per call) replaces the earlier ones.

Reads go from DuckDB to Arrow to NumPy without Python work per point: the vectors of N points come
back as one N x D float32 array over the Arrow buffer; metadata (a JSON object per point) is parsed by
one `json.loads` of the whole column; images stay in the database until `load_images` asks for a few.
The points are read through store/series_points.py (on a lake server: every server's, from the lake).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runstream_service.errors import NotFound
from runstream_service.store import series_points
from runstream_service.store.kinds import EMBEDDING
from runstream_service.store.series_points import Points

__all__ = ["LoadedEmbedding", "list_embeddings", "load_embedding", "load_images"]


@dataclass(frozen=True)
class LoadedEmbedding:
    run_id: str
    tag: str
    step: int
    rank: int
    vectors: np.ndarray  # N x D float32, row i is the point idx[i]
    idx: np.ndarray  # int64, ascending; equal to arange(N) when the embedding is complete
    metadata: list[dict[str, Any]]  # one per point ({} where none was logged)
    columns: list[str]  # the metadata's column names, in the order logged
    has_images: bool
    total_rows: int  # the points logged; N < total_rows while chunks are still arriving

    @property
    def complete(self) -> bool:
        return len(self.idx) == self.total_rows


def list_embeddings(cur: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Every embedding (of `run_ids`, or of all runs): run_id, tag, step, rank, rows (arrived), dims
    (None until its point 0 has arrived), total_rows, name (the run's) and complete, ordered by run, tag
    and step."""
    where, params = "", []
    if run_ids is not None:
        where, params = "WHERE p.run_id IN (SELECT unnest(?))", [run_ids]
    points = series_points.every(cur, EMBEDDING)
    # dims from each embedding's point 0 (the first chunk sent): a constant filter on idx keeps DuckDB
    # from reading every vector (a join on each embedding's first idx read them all: 1 s for 1M x 128).
    rows = cur.execute(
        f"""
        WITH per AS (
            SELECT run_id, tag, step, rank, wall_time, count(DISTINCT idx) AS rows, max(total_rows) AS total_rows
            FROM {points} GROUP BY run_id, tag, step, rank, wall_time
            QUALIFY row_number() OVER (PARTITION BY run_id, tag, step ORDER BY rank, wall_time DESC) = 1
        ), firsts AS (
            SELECT run_id, tag, step, rank, wall_time, any_value(len(vector)) AS dims
            FROM {points} WHERE idx = 0 GROUP BY run_id, tag, step, rank, wall_time
        )
        SELECT p.run_id, p.tag, p.step, p.rank, p.rows, f.dims, p.total_rows, m.name
        FROM per p
        LEFT JOIN firsts f USING (run_id, tag, step, rank, wall_time)
        LEFT JOIN run_meta m ON m.run_id = p.run_id
        {where}
        ORDER BY p.run_id, p.tag, p.step
        """,
        params,
    ).fetchall()
    names = ("run_id", "tag", "step", "rank", "rows", "dims", "total_rows", "name")
    out = []
    for row in rows:
        item = dict(zip(names, row))
        item["complete"] = item["rows"] == item["total_rows"]
        out.append(item)
    return out


def _locate(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int) -> Points:
    """One embedding's points (its series' at `step`, of its lowest rank and last logging), or NotFound saying
    what is missing."""
    series = series_points.find(cur, EMBEDDING, run_id, tag)
    if series is None:
        raise NotFound(f"run {run_id!r} has no embedding tagged {tag!r}; list them with list_embeddings")
    found = cur.execute(
        f"SELECT rank, max(wall_time) FROM {series.sql} WHERE step = $step GROUP BY rank ORDER BY rank LIMIT 1",
        {**series.params, "step": step},
    ).fetchall()
    if not found:
        raise NotFound(f"embedding {tag!r} of run {run_id!r} has no step {step}")
    return Points(
        f"(SELECT * FROM {series.sql} WHERE step = $step AND rank = $rank AND wall_time = $wall_time)",
        {**series.params, "step": step, "rank": int(found[0][0]), "wall_time": float(found[0][1])},
    )


def load_embedding(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int) -> LoadedEmbedding:
    """The points of one embedding in idx order (each idx once, the first to arrive if it came twice)."""
    points = _locate(cur, run_id, tag, step)
    table = cur.sql(
        f"SELECT idx, vector, metadata::VARCHAR AS metadata, image IS NOT NULL AS has_image, total_rows "
        f"FROM {points.sql}",
        params=points.params,
    ).to_arrow_table()
    rank = int(points.params["rank"])
    idx = table.column("idx").to_numpy().astype(np.int64)
    keep = _first_of_each_in_order(idx)
    if keep is not None:
        table = table.take(pa.array(keep))
        idx = idx[keep]
    vectors = _matrix(table.column("vector"), run_id, tag, step)
    metadata = _metadata(table.column("metadata"))
    columns = list(dict.fromkeys(chain.from_iterable(metadata)))
    has_images = bool(pc.any(table.column("has_image")).as_py()) if table.num_rows else False
    total = int(pc.max(table.column("total_rows")).as_py()) if table.num_rows else 0
    return LoadedEmbedding(run_id, tag, step, rank, vectors, idx, metadata, columns, has_images, total)


def load_images(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int, idx: list[int]) -> dict[int, bytes]:
    """The PNG thumbnails of the points `idx` of one embedding (points without one are left out)."""
    points = _locate(cur, run_id, tag, step)
    rows = cur.execute(
        f"SELECT idx, any_value(image) FROM {points.sql} WHERE image IS NOT NULL AND idx IN (SELECT unnest($idx)) "
        "GROUP BY idx",
        {**points.params, "idx": [int(i) for i in idx]},
    ).fetchall()
    return {int(i): bytes(blob) for i, blob in rows}


def _first_of_each_in_order(idx: np.ndarray) -> np.ndarray | None:
    """Positions that put the rows in idx order, each idx once; None when they already are."""
    if idx.size == 0 or (idx[1:] > idx[:-1]).all():
        return None
    _, first = np.unique(idx, return_index=True)  # sorted by idx; the first position of each
    return first


def _matrix(column: pa.ChunkedArray, run_id: str, tag: str, step: int) -> np.ndarray:
    """The vectors as one N x D float32 array: each Arrow chunk's value buffer copied once into it
    (Arrow's own flatten and to_numpy take the slow path over the validity bitmap DuckDB sends)."""
    rows = len(column)
    if rows == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lengths = pc.min_max(pc.list_value_length(column)).as_py()
    dims = lengths["min"]
    if dims != lengths["max"]:
        raise ValueError(f"embedding {tag!r} of run {run_id!r} at step {step} holds vectors of different lengths")
    out = np.empty((rows, dims), dtype=np.float32)
    row = 0
    for chunk in column.chunks:
        values = chunk.values  # the child array: its offsets run from chunk.offsets[0]
        start = values.offset + chunk.offsets[0].as_py()
        count = len(chunk) * dims
        flat = np.frombuffer(values.buffers()[1], np.float32, count=count, offset=start * 4)
        out[row : row + len(chunk)] = flat.reshape(len(chunk), dims)
        row += len(chunk)
    return out


def _metadata(column: pa.ChunkedArray) -> list[dict[str, Any]]:
    """Every point's JSON object, parsed by one json.loads of the whole column (stored values are JSON)."""
    texts = column.fill_null("{}").to_pylist()
    if not texts:
        return []
    return list(json.loads("[" + ",".join(texts) + "]"))
