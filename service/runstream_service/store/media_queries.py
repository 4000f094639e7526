"""Reads of the media kinds (audio clips, videos, meshes) for the web UI's tabs. No HTTP here.

Lists carry each point's small columns only; the blobs (a WAV file, an APNG/GIF, a mesh's arrays) are
read one point at a time when a player or the 3-D view asks for it. A mesh's arrays go from DuckDB to
Arrow to NumPy without Python work per vertex, so a mesh of a million vertices is read in one pass.

When a rank logged the same tag at the same step twice, the lists show both and a read by (step, rank)
returns the newer one (by wall_time), as images do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from runstream_service.errors import NotFound
from runstream_service.store import series_points
from runstream_service.store.kinds import AUDIO, MESH, VIDEO

__all__ = [
    "Blob",
    "MeshArrays",
    "audio_bytes",
    "list_audio",
    "list_meshes",
    "list_videos",
    "mesh_arrays",
    "video_bytes",
]


@dataclass(frozen=True)
class Blob:
    mime: str
    data: bytes


@dataclass(frozen=True)
class MeshArrays:
    vertices: np.ndarray  # float32, 3 per vertex (x, y, z)
    colors: np.ndarray | None  # uint8, 3 per vertex (r, g, b); None when none were logged
    faces: np.ndarray | None  # uint32, 3 vertex indices per face; None for a point cloud
    config: str  # the logged JSON object ('{}' when none)


def _rows(
    cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], names: tuple[str, ...]
) -> list[dict[str, Any]]:
    return [dict(zip(names, row)) for row in cur.execute(sql, params).fetchall()]


def list_audio(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str) -> list[dict[str, Any]]:
    """The clips of one tag: step, rank, wall_time, sample_rate, channels, frames and duration (s)."""
    points = series_points.series(cur, AUDIO, run_id, tag)
    return _rows(
        cur,
        "SELECT step, rank, wall_time, sample_rate, channels, frames, frames / sample_rate "
        f"FROM {points.sql} ORDER BY step, rank, wall_time",
        points.params,
        ("step", "rank", "wall_time", "sample_rate", "channels", "frames", "duration"),
    )


def audio_bytes(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int, rank: int) -> Blob:
    """One clip's WAV file as it was sent."""
    points = series_points.series(cur, AUDIO, run_id, tag)
    rows = cur.execute(
        f"SELECT wav FROM {points.sql} WHERE step = $step AND rank = $rank ORDER BY wall_time DESC LIMIT 1",
        {**points.params, "step": step, "rank": rank},
    ).fetchall()
    if not rows:
        raise NotFound(f"no audio {tag!r} at step {step}, rank {rank} in run {run_id}")
    return Blob("audio/wav", bytes(rows[0][0]))


def list_videos(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str) -> list[dict[str, Any]]:
    """The videos of one tag: step, rank, wall_time, width, height, frames, fps and mime."""
    points = series_points.series(cur, VIDEO, run_id, tag)
    return _rows(
        cur,
        f"SELECT step, rank, wall_time, width, height, frames, fps, mime FROM {points.sql} "
        "ORDER BY step, rank, wall_time",
        points.params,
        ("step", "rank", "wall_time", "width", "height", "frames", "fps", "mime"),
    )


def video_bytes(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int, rank: int) -> Blob:
    """One video's animation (APNG or GIF) as it was sent."""
    points = series_points.series(cur, VIDEO, run_id, tag)
    rows = cur.execute(
        f"SELECT mime, data FROM {points.sql} WHERE step = $step AND rank = $rank ORDER BY wall_time DESC LIMIT 1",
        {**points.params, "step": step, "rank": rank},
    ).fetchall()
    if not rows:
        raise NotFound(f"no video {tag!r} at step {step}, rank {rank} in run {run_id}")
    return Blob(str(rows[0][0]), bytes(rows[0][1]))


def list_meshes(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str) -> list[dict[str, Any]]:
    """The meshes of one tag: step, rank, sample, wall_time, vertex_count, face_count, has_colors, config."""
    points = series_points.series(cur, MESH, run_id, tag)
    return _rows(
        cur,
        "SELECT step, rank, sample, wall_time, vertex_count, face_count, colors IS NOT NULL, config "
        f"FROM {points.sql} ORDER BY step, rank, sample, wall_time",
        points.params,
        ("step", "rank", "sample", "wall_time", "vertex_count", "face_count", "has_colors", "config"),
    )


def _flat(column: pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray | None:
    """A one-row list column's values as a NumPy array, or None when the row holds NULL."""
    value = column.combine_chunks()
    if value.null_count:
        return None
    if isinstance(value, pa.LargeListArray | pa.ListArray):
        values: np.ndarray = value.flatten().to_numpy(zero_copy_only=False)
        return values.astype(dtype, copy=False)
    raise TypeError(f"expected a list column, got {value.type}")


def mesh_arrays(cur: duckdb.DuckDBPyConnection, run_id: str, tag: str, step: int, rank: int, sample: int) -> MeshArrays:
    """One mesh's vertices, colours and faces as typed arrays, and its config."""
    points = series_points.series(cur, MESH, run_id, tag)
    table = cur.sql(
        f"SELECT vertices, colors, faces, config FROM {points.sql} WHERE step = $step "
        "AND rank = $rank AND sample = $sample ORDER BY wall_time DESC LIMIT 1",
        params={**points.params, "step": step, "rank": rank, "sample": sample},
    ).to_arrow_table()
    if table.num_rows == 0:
        raise NotFound(f"no mesh {tag!r} at step {step}, rank {rank}, sample {sample} in run {run_id}")
    vertices = _flat(table.column("vertices"), np.float32)
    if vertices is None:
        raise NotFound(f"mesh {tag!r} at step {step} has no vertices")
    config = table.column("config")[0].as_py()
    return MeshArrays(
        vertices=vertices,
        colors=_flat(table.column("colors"), np.uint8),
        faces=_flat(table.column("faces"), np.uint32),
        config=config or "{}",
    )
