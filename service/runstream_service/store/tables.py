"""Validated batches in, the Arrow rows of one commit out. Pure: no DuckDB, no threads, no I/O.

The writer thread turns the batches of one commit into one table per kind (store/kinds.py), so
each point table gets a single large append. Numeric columns are zero-copy views of the decoded
batches where Arrow allows, and nothing here does Python work per point: only per batch and per
tag (a tag's series id is looked up once per batch, then spread over its points by one gather).

The commit also summarises its scalar points per series (count, first and last step and wall
time) for series_stats, with NumPy over each batch's small tag indices rather than a group-by
over the commit's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa

from runstream_service.store.kinds import (
    AUDIO,
    EMBEDDING,
    GRAPH,
    HISTOGRAM,
    IMAGE,
    KINDS,
    MESH,
    PR_CURVE,
    SCALAR,
    TENSOR,
    TEXT,
    VIDEO,
    Kind,
)
from runstream_service.validate import (
    AudioColumns,
    DecodedBatch,
    EmbeddingColumns,
    GraphColumns,
    HistogramColumns,
    ImageColumns,
    MeshColumns,
    PrCurveColumns,
    ScalarColumns,
    ScalarRows,
    TensorColumns,
    TextColumns,
    VideoColumns,
)

SeriesKey = tuple[str, str, str]  # run id, kind name, tag
Columns = (
    ScalarColumns
    | HistogramColumns
    | ImageColumns
    | TextColumns
    | EmbeddingColumns
    | GraphColumns
    | AudioColumns
    | VideoColumns
    | PrCurveColumns
    | MeshColumns
    | TensorColumns
)
C = TypeVar(
    "C",
    ScalarColumns,
    HistogramColumns,
    ImageColumns,
    TextColumns,
    EmbeddingColumns,
    GraphColumns,
    AudioColumns,
    VideoColumns,
    PrCurveColumns,
    MeshColumns,
    TensorColumns,
)

SERIES_SCHEMA = pa.schema(
    [("series_id", pa.int32()), ("run_id", pa.string()), ("kind", pa.string()), ("tag", pa.string())]
)


class SeriesIds:
    """Series ids: the committed ones, and those the commit being built adds (numbered after them).

    Owned by the writer thread: `adopt()` once the commit that wrote the new series went
    through, `forget()` when it was rolled back, so a failed commit leaves no id behind.
    """

    def __init__(self, committed: dict[SeriesKey, int]) -> None:
        self._committed = committed
        self._next = max(committed.values(), default=-1) + 1
        self._new: dict[SeriesKey, int] = {}

    def by_tag(self, run_id: str, kind: str, tags: Sequence[str], used: np.ndarray) -> np.ndarray:
        """Series id of each tag of a batch (int32; -1 for the tags not in `used`), made if new."""
        table = np.full(len(tags), -1, dtype=np.int32)
        committed, new = self._committed, self._new
        for i in used.tolist():
            key = (run_id, kind, tags[i])
            sid = committed.get(key)
            if sid is None:
                sid = new.get(key)
                if sid is None:
                    sid = new[key] = self._next + len(new)
            table[i] = sid
        return table

    def drop_runs(self, run_ids: tuple[str, ...]) -> set[int]:
        """Forget the committed series of deleted runs (their ids are not given again); returns those ids."""
        dropped = {key: sid for key, sid in self._committed.items() if key[0] in run_ids}
        for key in dropped:
            del self._committed[key]
        return set(dropped.values())

    def new_rows(self) -> pa.Table | None:
        """The series rows the commit being built adds, or None."""
        if not self._new:
            return None
        keys = list(self._new)
        return pa.table(
            [
                pa.array(list(self._new.values()), pa.int32()),
                pa.array([k[0] for k in keys], pa.string()),
                pa.array([k[1] for k in keys], pa.string()),
                pa.array([k[2] for k in keys], pa.string()),
            ],
            schema=SERIES_SCHEMA,
        )

    def adopt(self) -> None:
        self._committed.update(self._new)
        self._next += len(self._new)
        self._new = {}

    def forget(self) -> None:
        self._new = {}


@dataclass(frozen=True)
class KindPoints:
    """One batch's points of one kind, and the series id of each point."""

    rank: int
    series_id: np.ndarray  # int32, one per point
    columns: Columns


@dataclass(frozen=True)
class CommitRows:
    """What one commit appends: new series, point rows per kind (kinds without points left out),
    and the per-series summary of its scalar points (columns of series_stats)."""

    series: pa.Table | None
    points: dict[Kind, pa.Table]
    scalar_stats: pa.Table | None

    @property
    def scalar_points(self) -> int:
        table = self.points.get(SCALAR)
        return table.num_rows if table is not None else 0


def build_rows(batches: Sequence[DecodedBatch], ids: SeriesIds) -> CommitRows:
    """The rows of one commit of `batches` (duplicates already left out), giving new series ids from `ids`."""
    parts: dict[Kind, list[KindPoints]] = {}
    stats: list[tuple[np.ndarray, ...]] = []
    for batch in batches:
        for kind in KINDS:
            columns: Columns | None = getattr(batch, kind.field)
            if columns is None or not len(columns.step):
                continue
            index = columns.tag_index.astype(np.intp)  # once, not inside each NumPy call below
            per_tag = np.bincount(index, minlength=len(batch.tags))
            used = np.flatnonzero(per_tag)  # no sort, unlike np.unique
            by_tag = ids.by_tag(batch.run_id, kind.name, batch.tags, used)
            parts.setdefault(kind, []).append(KindPoints(batch.rank, by_tag[index], columns))
            if kind is SCALAR:
                assert isinstance(columns, ScalarColumns)
                stats.append(_tag_stats(columns, index, per_tag, used, by_tag))
    points = {kind: BUILDERS[kind.name](kind_parts) for kind, kind_parts in parts.items()}
    return CommitRows(ids.new_rows(), points, _series_stats(stats) if stats else None)


def _tag_stats(
    columns: ScalarColumns, index: np.ndarray, per_tag: np.ndarray, used: np.ndarray, by_tag: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(series_id, points, first_step, last_step, first_wall, last_wall) of each tag a batch uses.

    Minima skip NaN wall times and maxima keep them, as DuckDB's min and max do (NaN sorts last).
    """
    if columns.rows is not None and _one_shape(index, columns.rows.points):
        return _shape_stats(columns.rows, per_tag, used, by_tag)
    tags = len(per_tag)
    first_step = np.full(tags, np.iinfo(np.int64).max, dtype=np.int64)
    last_step = np.full(tags, np.iinfo(np.int64).min, dtype=np.int64)
    first_wall = np.full(tags, np.nan)
    last_wall = np.full(tags, -np.inf)
    np.minimum.at(first_step, index, columns.step)
    np.maximum.at(last_step, index, columns.step)
    with np.errstate(invalid="ignore"):  # NaN wall times: kept as described, not worth a warning
        np.fmin.at(first_wall, index, columns.wall_time)
        np.maximum.at(last_wall, index, columns.wall_time)
    return tuple(a[used] for a in (by_tag, per_tag, first_step, last_step, first_wall, last_wall))


def _one_shape(index: np.ndarray, row_points: np.ndarray) -> bool:
    """Every row holds the same tags in the same order (one `log` dict shape: the usual batch)."""
    width = int(row_points[0])
    if not (row_points == width).all():
        return False
    by_row = index.reshape(-1, width)
    return bool((by_row == by_row[0]).all())


def _shape_stats(rows: ScalarRows, per_tag: np.ndarray, used: np.ndarray, by_tag: np.ndarray) -> tuple[np.ndarray, ...]:
    """`_tag_stats` of a batch of one shape: each tag has a point in every row, so its first and last
    step and wall time are the rows' (a tenth of the work for 10 tags a call, and no ufunc.at)."""
    count = len(used)
    with np.errstate(invalid="ignore"):
        first_wall, last_wall = np.fmin.reduce(rows.wall_time), rows.wall_time.max()
    return (
        by_tag[used],
        per_tag[used],
        np.full(count, rows.step.min(), dtype=np.int64),
        np.full(count, rows.step.max(), dtype=np.int64),
        np.full(count, first_wall, dtype=np.float64),
        np.full(count, last_wall, dtype=np.float64),
    )


def _series_stats(per_batch: list[tuple[np.ndarray, ...]]) -> pa.Table:
    """One series_stats row per series, from the per-batch rows of each tag."""
    series_id, points, first_step, last_step, first_wall, last_wall = (np.concatenate(c) for c in zip(*per_batch))
    order = np.argsort(series_id, kind="stable")
    sorted_ids = series_id[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    with np.errstate(invalid="ignore"):
        first_wall = np.fmin.reduceat(first_wall[order], starts)
        last_wall = np.maximum.reduceat(last_wall[order], starts)
    return pa.table(
        {
            "series_id": sorted_ids[starts],
            "points": np.add.reduceat(points[order].astype(np.int64), starts),
            "first_step": np.minimum.reduceat(first_step[order], starts),
            "last_step": np.maximum.reduceat(last_step[order], starts),
            "first_wall": first_wall,
            "last_wall": last_wall,
        }
    )


def _columns_of(parts: list[KindPoints], kind: type[C]) -> list[C]:
    columns = [p.columns for p in parts]
    assert all(isinstance(c, kind) for c in columns), kind
    return columns  # type: ignore[return-value]  # checked just above


def _ranks(parts: list[KindPoints]) -> np.ndarray:
    return np.concatenate([np.full(len(p.series_id), p.rank, dtype=np.int32) for p in parts])


def _scalar_rows(parts: list[KindPoints]) -> pa.Table:
    # One table of zero-copy chunks, one per batch: the INSERT takes them all. In arrival order:
    # the compactor sorts them by series and step (store/compactor.py).
    tables = []
    for part, c in zip(parts, _columns_of(parts, ScalarColumns)):
        rank = np.full(len(c.step), part.rank, dtype=np.int32)
        tables.append(pa.table([part.series_id, c.step, rank, c.wall_time, c.value], names=list(SCALAR.columns)))
    return pa.concat_tables(tables)


def _histogram_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, HistogramColumns)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in columns])

    def lists(values: str, offsets: str) -> pa.ListArray:
        offs, base = [], 0
        for i, c in enumerate(columns):
            o = getattr(c, offsets)
            offs.append((o[:-1] if i < len(columns) - 1 else o) + base)
            base += int(o[-1])
        return pa.ListArray.from_arrays(pa.array(np.concatenate(offs).astype(np.int32)), pa.array(cat(values)))

    return pa.table(
        [
            np.concatenate([p.series_id for p in parts]),
            cat("step"),
            _ranks(parts),
            cat("wall_time"),
            cat("count"),
            cat("min"),
            cat("max"),
            cat("sum"),
            cat("sum_squares"),
            lists("edges", "offsets_edges"),
            lists("counts", "offsets_counts"),
        ],
        names=list(HISTOGRAM.columns),
    )


def _image_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, ImageColumns)
    return pa.table(
        [
            np.concatenate([p.series_id for p in parts]),
            np.concatenate([c.step for c in columns]),
            _ranks(parts),
            np.concatenate([c.wall_time for c in columns]),
            np.concatenate([c.width for c in columns]),
            np.concatenate([c.height for c in columns]),
            pa.array([m for c in columns for m in c.mime], pa.string()),
            pa.array([d for c in columns for d in c.data], pa.binary()),
            pa.array([b for c in columns for b in (c.boxes or [None] * len(c.data))], pa.string()),
        ],
        names=list(IMAGE.columns),
    )


def _text_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, TextColumns)
    return pa.table(
        [
            np.concatenate([p.series_id for p in parts]),
            np.concatenate([c.step for c in columns]),
            _ranks(parts),
            np.concatenate([c.wall_time for c in columns]),
            pa.array([t for c in columns for t in c.text], pa.string()),
        ],
        names=list(TEXT.columns),
    )


def _embedding_rows(parts: list[KindPoints]) -> pa.Table:
    """One row per point; each point's vector a list over the batch's float32 values (64-bit offsets: a
    commit may hold more than 2^31 values)."""
    columns = _columns_of(parts, EmbeddingColumns)
    offsets, base = [], 0
    for i, c in enumerate(columns):
        offsets.append((c.offsets[:-1] if i < len(columns) - 1 else c.offsets) + base)
        base += int(c.offsets[-1])
    vectors = pa.LargeListArray.from_arrays(
        pa.array(np.concatenate(offsets)), pa.array(np.concatenate([c.vectors for c in columns]))
    )
    return pa.table(
        [
            np.concatenate([p.series_id for p in parts]),
            np.concatenate([c.step for c in columns]),
            _ranks(parts),
            np.concatenate([c.wall_time for c in columns]),
            np.concatenate([c.idx for c in columns]),
            vectors,
            pa.array([m for c in columns for m in c.metadata], pa.string()),
            pa.array([d for c in columns for d in c.image], pa.binary()),
            np.concatenate([c.total_rows for c in columns]),
        ],
        names=list(EMBEDDING.columns),
    )


def _graph_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, GraphColumns)
    return pa.table(
        [
            np.concatenate([p.series_id for p in parts]),
            np.concatenate([c.step for c in columns]),
            _ranks(parts),
            np.concatenate([c.wall_time for c in columns]),
            np.concatenate([c.nodes for c in columns]),
            np.concatenate([c.edges for c in columns]),
            np.concatenate([c.parameters for c in columns]),
            pa.array([d for c in columns for d in c.doc], pa.string()),
        ],
        names=list(GRAPH.columns),
    )


def _keys(parts: list[KindPoints], columns: Sequence[Columns]) -> list[np.ndarray]:
    """The point key columns (series_id, step, rank, wall_time) of every kind's rows."""
    return [
        np.concatenate([p.series_id for p in parts]),
        np.concatenate([c.step for c in columns]),
        _ranks(parts),
        np.concatenate([c.wall_time for c in columns]),
    ]


def _lists(
    columns: Sequence[Columns], values: str, offsets: str, value_type: pa.DataType, nulls: str | None = None
) -> pa.LargeListArray:
    """One list per point over the concatenated `values` of the batches, point i's items at
    values[offsets[i]:offsets[i + 1]] within its batch; a point whose `nulls` count is 0 is NULL."""
    offs, base = [], 0
    for i, c in enumerate(columns):
        o = getattr(c, offsets)
        offs.append((o[:-1] if i < len(columns) - 1 else o) + base)
        base += int(o[-1])
    flat = pa.array(np.concatenate([getattr(c, values) for c in columns]), value_type)
    mask = None
    if nulls is not None:
        mask = pa.array(np.concatenate([getattr(c, nulls) == 0 for c in columns]))
    return pa.LargeListArray.from_arrays(pa.array(np.concatenate(offs).astype(np.int64)), flat, mask=mask)


def _audio_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, AudioColumns)
    return pa.table(
        [
            *_keys(parts, columns),
            np.concatenate([c.sample_rate for c in columns]),
            np.concatenate([c.channels for c in columns]),
            np.concatenate([c.frames for c in columns]),
            pa.array([w for c in columns for w in c.wav], pa.binary()),
        ],
        names=list(AUDIO.columns),
    )


def _video_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, VideoColumns)
    return pa.table(
        [
            *_keys(parts, columns),
            np.concatenate([c.width for c in columns]),
            np.concatenate([c.height for c in columns]),
            np.concatenate([c.frames for c in columns]),
            np.concatenate([c.fps for c in columns]),
            pa.array([m for c in columns for m in c.mime], pa.string()),
            pa.array([d for c in columns for d in c.data], pa.binary()),
        ],
        names=list(VIDEO.columns),
    )


def _pr_curve_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, PrCurveColumns)
    rows = PR_CURVE.values[1:]  # true_positives .. recall: the attributes of the same names
    return pa.table(
        [
            *_keys(parts, columns),
            np.concatenate([c.thresholds for c in columns]),
            *(_lists(columns, row, "offsets", pa.float64()) for row in rows),
        ],
        names=list(PR_CURVE.columns),
    )


def _mesh_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, MeshColumns)
    return pa.table(
        [
            *_keys(parts, columns),
            np.concatenate([c.sample for c in columns]),
            np.concatenate([c.vertex_count for c in columns]),
            np.concatenate([c.face_count for c in columns]),
            _lists(columns, "vertices", "vertex_offsets", pa.float32()),
            _lists(columns, "colors", "color_offsets", pa.uint8(), nulls="color_count"),
            _lists(columns, "faces", "face_offsets", pa.int32(), nulls="face_count"),
            pa.array([cfg for c in columns for cfg in c.config], pa.string()),
        ],
        names=list(MESH.columns),
    )


def _tensor_rows(parts: list[KindPoints]) -> pa.Table:
    columns = _columns_of(parts, TensorColumns)
    return pa.table(
        [
            *_keys(parts, columns),
            pa.array([d for c in columns for d in c.dtype], pa.string()),
            _lists(columns, "shape", "shape_offsets", pa.int64()),
            pa.array([d for c in columns for d in c.data], pa.binary()),
        ],
        names=list(TENSOR.columns),
    )


# The rows of each kind's point table, by kind name (tests/unit/test_kinds.py: one per kind).
BUILDERS: dict[str, Callable[[list[KindPoints]], pa.Table]] = {
    SCALAR.name: _scalar_rows,
    HISTOGRAM.name: _histogram_rows,
    IMAGE.name: _image_rows,
    TEXT.name: _text_rows,
    GRAPH.name: _graph_rows,
    EMBEDDING.name: _embedding_rows,
    AUDIO.name: _audio_rows,
    VIDEO.name: _video_rows,
    PR_CURVE.name: _pr_curve_rows,
    MESH.name: _mesh_rows,
    TENSOR.name: _tensor_rows,
}
