"""store/tables.py: hand-made decoded batches in, the rows of one commit out (no database but as a reference)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from runstream._encode import encode_batch
from runstream_service.store.kinds import HISTOGRAM, IMAGE, SCALAR, TEXT
from runstream_service.store.tables import CommitRows, SeriesIds, build_rows
from runstream_service.validate import (
    DecodedBatch,
    HistogramColumns,
    ImageColumns,
    ScalarColumns,
    TextColumns,
    decode_batch,
)


def _scalars(tag_index: list[int], step: list[int], wall: list[float], value: list[float]) -> ScalarColumns:
    return ScalarColumns(
        np.array(tag_index, np.uint32),
        np.array(step, np.int64),
        np.array(wall, np.float64),
        np.array(value, np.float64),
    )


def _batch(seq: int, tags: list[str], rank: int = 0, run_id: str = "run", **kinds: object) -> DecodedBatch:
    return DecodedBatch(
        run_id, rank, "writer", seq, tags, kinds.get("scalars"), kinds.get("histograms"), kinds.get("images"),
        kinds.get("texts"),
    )  # fmt: skip


def test_scalar_rows_in_arrival_order_with_series_ids_after_the_committed_ones() -> None:
    ids = SeriesIds({("run", "scalar", "old"): 0, ("run", "histogram", "loss"): 1})
    first = _batch(
        1, ["loss", "old", "unused"], scalars=_scalars([0, 1, 0], [5, 5, 6], [1.0, 1.0, 2.0], [0.5, 7, 0.25])
    )
    second = _batch(2, ["acc", "loss"], rank=3, scalars=_scalars([1, 0], [7, 7], [3.0, 3.0], [0.125, 0.9]))
    rows = build_rows([first, second], ids)
    assert list(rows.points) == [SCALAR]
    assert rows.points[SCALAR].to_pydict() == {
        "series_id": [2, 0, 2, 2, 3],
        "step": [5, 5, 6, 7, 7],
        "rank": [0, 0, 0, 3, 3],
        "wall_time": [1.0, 1.0, 2.0, 3.0, 3.0],
        "value": [0.5, 7.0, 0.25, 0.125, 0.9],
    }
    assert rows.points[SCALAR].column_names == list(SCALAR.columns)
    assert rows.scalar_points == 5
    assert rows.series is not None
    assert rows.series.to_pylist() == [
        {"series_id": 2, "run_id": "run", "kind": "scalar", "tag": "loss"},  # a scalar "loss" is not the histogram
        {"series_id": 3, "run_id": "run", "kind": "scalar", "tag": "acc"},
    ]


def test_series_ids_of_a_failed_commit_are_given_again() -> None:
    ids = SeriesIds({})
    batch = _batch(1, ["a"], scalars=_scalars([0], [1], [1.0], [1.0]))
    build_rows([batch], ids)
    ids.forget()
    assert build_rows([batch], ids).points[SCALAR].column("series_id").to_pylist() == [0]
    ids.adopt()
    again = build_rows([_batch(2, ["a", "b"], scalars=_scalars([1, 0], [2, 2], [2.0, 2.0], [1.0, 1.0]))], ids)
    assert again.points[SCALAR].column("series_id").to_pylist() == [1, 0]
    assert again.series is not None and again.series.column("tag").to_pylist() == ["b"]


def test_scalar_summary_matches_duckdbs_aggregates() -> None:
    rng = np.random.default_rng(7)
    batches = []
    for seq in range(1, 6):
        n = 500
        wall = rng.uniform(0, 100, n)
        wall[rng.integers(0, n, 5)] = np.nan  # minima skip NaN, maxima keep it, as in DuckDB
        if seq == 3:
            wall[:] = np.nan
            tags, index = ["nan-only"], np.zeros(n, np.uint32)
        else:
            tags, index = [f"t{i}" for i in range(8)], rng.integers(0, 8, n).astype(np.uint32)
        columns = ScalarColumns(index, rng.integers(0, 10_000, n), wall, rng.standard_normal(n))
        batches.append(_batch(seq, tags, scalars=columns))
    _assert_summary_matches_duckdb(build_rows(batches, SeriesIds({})))


def test_scalar_summary_of_batches_sent_by_row_matches_duckdbs_aggregates() -> None:
    """Batches as the SDK sends them (by row): one shape (the rows' fast path), mixed shapes, NaN walls."""
    rng = np.random.default_rng(11)
    shape_a, shape_b = ("loss", "acc", "lr"), ("grad",)
    batches = []
    for seq, shapes in enumerate([[shape_a], [shape_a, shape_b], [shape_b], [shape_a]], start=1):
        packed = []
        for i in range(200):
            keys = shapes[i % len(shapes)]
            wall = float("nan") if i % 17 == 0 else float(rng.uniform(0, 100))
            packed.append((int(rng.integers(0, 10_000)), wall, keys, rng.standard_normal(len(keys)).tobytes()))
        message = encode_batch("run", 0, "writer", seq, packed).message
        assert message.scalars.row_points  # by row, as the SDK sends
        batches.append(decode_batch(message))
    for commit in [[b] for b in batches] + [batches]:  # each batch alone (the fast path shows), then all
        _assert_summary_matches_duckdb(build_rows(commit, SeriesIds({})))


def _assert_summary_matches_duckdb(rows: CommitRows) -> None:
    assert rows.scalar_stats is not None
    con = duckdb.connect(":memory:")
    con.register("points", rows.points[SCALAR])
    reference = con.sql(
        "SELECT series_id, count(*) AS points, min(step) AS first_step, max(step) AS last_step, "
        "min(wall_time) AS first_wall, max(wall_time) AS last_wall FROM points GROUP BY series_id ORDER BY series_id"
    ).fetchall()
    assert _rows_with_nan(rows.scalar_stats.to_pylist()) == _rows_with_nan(
        [dict(zip(rows.scalar_stats.column_names, r)) for r in reference]
    )


def _rows_with_nan(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: "NaN" if isinstance(v, float) and v != v else v for k, v in row.items()} for row in rows]


def test_histogram_rows_keep_each_histograms_buckets_across_batches() -> None:
    def histograms(
        tag_index: list[int], steps: list[int], edges: list[list[float]], counts: list[list[float]]
    ) -> HistogramColumns:
        buckets = np.array([len(c) for c in counts])
        offsets_counts = np.concatenate(([0], np.cumsum(buckets)))
        return HistogramColumns(
            np.array(tag_index, np.uint32), np.array(steps, np.int64), np.zeros(len(steps)),
            offsets_counts + np.arange(len(steps) + 1), offsets_counts,
            np.concatenate([np.array(e, float) for e in edges]), np.concatenate([np.array(c, float) for c in counts]),
            np.array([sum(c) for c in counts], float), np.zeros(len(steps)), np.ones(len(steps)),
            np.zeros(len(steps)), np.zeros(len(steps)),
        )  # fmt: skip

    first = _batch(1, ["w"], histograms=histograms([0, 0], [1, 2], [[0, 1], [0, 1, 2]], [[3], [1, 2]]))
    second = _batch(2, ["w", "g"], histograms=histograms([1], [1], [[5, 6, 7, 8]], [[1, 1, 1]]))
    table = build_rows([first, second], SeriesIds({})).points[HISTOGRAM]
    assert table.column_names == list(HISTOGRAM.columns)
    assert table.select(["series_id", "step", "count", "bucket_limits", "bucket_counts"]).to_pylist() == [
        {"series_id": 0, "step": 1, "count": 3.0, "bucket_limits": [0.0, 1.0], "bucket_counts": [3.0]},
        {"series_id": 0, "step": 2, "count": 3.0, "bucket_limits": [0.0, 1.0, 2.0], "bucket_counts": [1.0, 2.0]},
        {"series_id": 1, "step": 1, "count": 3.0, "bucket_limits": [5.0, 6.0, 7.0, 8.0], "bucket_counts": [1.0] * 3},
    ]
    assert build_rows([first], SeriesIds({})).scalar_stats is None  # series_stats summarises scalars only


def test_image_and_text_rows() -> None:
    images = ImageColumns(
        np.array([0], np.uint32), np.array([4]), np.array([9.0]), np.array([2], np.int32), np.array([3], np.int32),
        ["image/png"], [b"\x89PNG..."],
    )  # fmt: skip
    texts = TextColumns(np.array([1, 1], np.uint32), np.array([4, 5]), np.array([9.0, 10.0]), ["a", "**b**"])
    rows = build_rows([_batch(1, ["img", "notes"], rank=2, images=images, texts=texts)], SeriesIds({}))
    assert list(rows.points) == [IMAGE, TEXT]
    assert rows.points[IMAGE].to_pylist() == [
        {"series_id": 0, "step": 4, "rank": 2, "wall_time": 9.0, "width": 2, "height": 3, "mime": "image/png",
         "data": b"\x89PNG...", "boxes": None},
    ]  # fmt: skip
    assert rows.points[TEXT].to_pydict() == {
        "series_id": [1, 1], "step": [4, 5], "rank": [2, 2], "wall_time": [9.0, 10.0], "text": ["a", "**b**"],
    }  # fmt: skip
    assert rows.points[TEXT].schema.field("text").type == pa.string()


def test_nothing_to_write() -> None:
    empty = _batch(1, ["a"], scalars=_scalars([], [], [], []))
    rows = build_rows([empty], SeriesIds({}))
    assert (rows.series, rows.points, rows.scalar_stats) == (None, {}, None)
