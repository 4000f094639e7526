"""Rollup tiers of scalar series, and combining M4 partials. Pure NumPy, no I/O.

A partial summarises the points of one series in one step bucket: how many points, how many
numbers (not NaN) and their sum, the first and last point by step, and the points with the
smallest and largest number. At level L a point at `step` falls in bucket `step >> L`
(buckets of 2**L steps; the arithmetic shift floors negative steps too).

Partials of the same bucket combine exactly (first of firsts, smallest of minimums, ...), so
the compactor builds level L + 1 from level L, a read merges partials of several compactions
and of not yet compacted points, and the result equals M4 computed on every raw point.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

LEVEL_MIN = 4  # buckets of 16 steps; finer reads scan the points themselves
LEVEL_MAX = 30  # buckets of 2**30 steps; coarser views just get more columns than pixels

NO_STEP = np.iinfo(np.int64).min  # min_step / max_step of a bucket without numbers (stored as NULL)
NO_VALUE = np.iinfo(np.int64).max  # a step that loses every "earliest" comparison


@dataclass(frozen=True)
class Partials:
    """Column arrays, one row per (series_id, bucket); rows of one key are adjacent when combined."""

    series_id: np.ndarray  # int32
    bucket: np.ndarray  # int64
    points: np.ndarray  # int64
    numbers: np.ndarray  # int64: points whose value is not NaN
    sum: np.ndarray  # float64: sum of those values
    first_step: np.ndarray  # int64
    first_value: np.ndarray  # float64
    last_step: np.ndarray
    last_value: np.ndarray
    min_step: np.ndarray  # NO_STEP where numbers == 0
    min_value: np.ndarray  # NaN where numbers == 0
    max_step: np.ndarray
    max_value: np.ndarray

    @property
    def size(self) -> int:
        return int(self.bucket.size)

    def columns(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in FIELDS}


FIELDS = tuple(Partials.__dataclass_fields__)


def from_points(series_id: np.ndarray, step: np.ndarray, value: np.ndarray, level: int) -> Partials:
    """Partials at `level` of points sorted by (series_id, step).

    The same result as combining one partial per point (combine_sorted), in fewer passes over
    the points: the compactor runs this on every point it writes.
    """
    series_id = np.asarray(series_id, dtype=np.int32)
    step = np.asarray(step, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    bucket = step >> level
    new_key = np.ones(step.size, dtype=bool)
    new_key[1:] = (bucket[1:] != bucket[:-1]) | (series_id[1:] != series_id[:-1])
    starts = np.flatnonzero(new_key)
    last = np.append(starts[1:], step.size)[: starts.size] - 1  # rows of a key in step order: the last is latest
    segment = np.cumsum(new_key) - 1
    number = ~np.isnan(value)
    min_value = np.fmin.reduceat(value, starts)  # NaN only where a bucket holds no number
    max_value = np.fmax.reduceat(value, starts)
    # Ties of the smallest or largest number go to the earliest step (as in combine_sorted).
    min_step = np.minimum.reduceat(np.where(value == min_value[segment], step, NO_VALUE), starts)
    max_step = np.minimum.reduceat(np.where(value == max_value[segment], step, NO_VALUE), starts)
    has_low, has_high = min_step != NO_VALUE, max_step != NO_VALUE
    return Partials(
        series_id=series_id[starts],
        bucket=bucket[starts],
        points=np.diff(np.append(starts, step.size)).astype(np.int64),
        numbers=np.add.reduceat(number.astype(np.int64), starts),
        sum=np.add.reduceat(np.where(number, value, 0.0), starts),
        first_step=step[starts],
        first_value=value[starts],
        last_step=step[last],
        last_value=value[last],
        min_step=np.where(has_low, min_step, NO_STEP),
        min_value=np.where(has_low, min_value, np.nan),
        max_step=np.where(has_high, max_step, NO_STEP),
        max_value=np.where(has_high, max_value, np.nan),
    )


def coarser(partials: Partials, levels: int = 1) -> Partials:
    """The same data `levels` levels up: buckets `levels` times twice as wide."""
    shifted = Partials(**(partials.columns() | {"bucket": partials.bucket >> levels}))
    return combine_sorted(shifted)


def combine(partials: Partials) -> Partials:
    """One row per (series_id, bucket), sorted by them, from rows in any order."""
    order = np.lexsort((partials.first_step, partials.bucket, partials.series_id))
    return combine_sorted(Partials(**{name: values[order] for name, values in partials.columns().items()}))


def combine_sorted(p: Partials) -> Partials:
    """Combine adjacent rows with the same (series_id, bucket); rows of a key in first_step order."""
    n = p.size
    if n == 0:
        return p
    new_key = np.ones(n, dtype=bool)
    new_key[1:] = (p.series_id[1:] != p.series_id[:-1]) | (p.bucket[1:] != p.bucket[:-1])
    starts = np.flatnonzero(new_key)
    if starts.size == n:
        return p
    ends = np.append(starts[1:], n)  # exclusive
    segment = np.cumsum(new_key) - 1

    # First: the earliest first_step; rows of a key come in first_step order, so the segment's first row.
    first = starts
    # Last: the latest last_step (the segment's last row holding it).
    last_step = np.maximum.reduceat(p.last_step, starts)
    last = _last_where(p.last_step == last_step[segment], ends)
    # Smallest and largest number: NaN marks a partial without numbers, which fmin/fmax skip.
    # Ties go to the earliest step, here and in SQL (downsample.py), so results never depend on layout.
    min_value = np.fmin.reduceat(p.min_value, starts)
    max_value = np.fmax.reduceat(p.max_value, starts)
    min_step = np.minimum.reduceat(np.where(p.min_value == min_value[segment], p.min_step, NO_VALUE), starts)
    max_step = np.minimum.reduceat(np.where(p.max_value == max_value[segment], p.max_step, NO_VALUE), starts)
    has_low, has_high = min_step != NO_VALUE, max_step != NO_VALUE
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as in SQL
        total = np.add.reduceat(p.sum, starts)
    return Partials(
        series_id=p.series_id[starts],
        bucket=p.bucket[starts],
        points=np.add.reduceat(p.points, starts),
        numbers=np.add.reduceat(p.numbers, starts),
        sum=total,
        first_step=p.first_step[first],
        first_value=p.first_value[first],
        last_step=last_step,
        last_value=p.last_value[last],
        min_step=np.where(has_low, min_step, NO_STEP),
        min_value=np.where(has_low, min_value, np.nan),
        max_step=np.where(has_high, max_step, NO_STEP),
        max_value=np.where(has_high, max_value, np.nan),
    )


def _last_where(mask: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per segment ending at `ends` (exclusive), the last index where mask holds (it holds somewhere)."""
    hits = np.flatnonzero(mask)
    return hits[np.searchsorted(hits, ends) - 1]


def all_levels(series_id: np.ndarray, step: np.ndarray, value: np.ndarray) -> list[tuple[int, Partials]]:
    """(level, partials) for every level LEVEL_MIN..LEVEL_MAX of points sorted by (series_id, step)."""
    partials = from_points(series_id, step, value, LEVEL_MIN)
    levels = [(LEVEL_MIN, partials)]
    for level in range(LEVEL_MIN + 1, LEVEL_MAX + 1):
        partials = coarser(partials)
        levels.append((level, partials))
    return levels


def columns_of(partials: Partials, first_bucket: int, buckets: int, width: int) -> Partials:
    """Partials per (series, column), in any order: `buckets` buckets from `first_bucket` spread
    evenly over `width` columns, the column in the `bucket` field. Each column is made of whole
    buckets, so its M4 is exact; with at least `width` buckets every column has at least one.
    """
    column = ((partials.bucket - first_bucket) * width) // max(buckets, 1)
    return combine(replace(partials, bucket=column))


def level_for(span_steps: int, width: int) -> int:
    """The coarsest level with at least `width` buckets over `span_steps` steps (one or more per column)."""
    if span_steps <= width:
        return 0
    return min(int(span_steps // width).bit_length() - 1, LEVEL_MAX)
