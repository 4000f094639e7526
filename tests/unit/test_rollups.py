"""Rollup partials against a direct NumPy reference; combining is exact however points are split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runstream_service.store.compactor import chunks, merge_candidates
from runstream_service.store.rollups import (
    LEVEL_MAX,
    LEVEL_MIN,
    NO_STEP,
    Partials,
    all_levels,
    coarser,
    combine,
    from_points,
    level_for,
)


def _reference(series_id: np.ndarray, step: np.ndarray, value: np.ndarray, level: int) -> dict[tuple[int, int], tuple]:
    out = {}
    for key in sorted(set(zip(series_id.tolist(), (step >> level).tolist()))):
        mine = (series_id == key[0]) & ((step >> level) == key[1])
        s, v = step[mine], value[mine]
        order = np.argsort(s, kind="stable")
        s, v = s[order], v[order]
        numbers = ~np.isnan(v)
        low = high = (NO_STEP, np.nan)
        if numbers.any():
            lo_v, hi_v = v[numbers].min(), v[numbers].max()
            low = (int(s[numbers & (v == lo_v)].min()), lo_v)
            high = (int(s[numbers & (v == hi_v)].min()), hi_v)
        with np.errstate(invalid="ignore"):
            total = float(v[numbers].sum())
        out[key] = (s.size, int(numbers.sum()), total, int(s[0]), v[0], int(s[-1]), v[-1], *low, *high)
    return out


def _as_dict(p: Partials) -> dict[tuple[int, int], tuple]:
    return {
        (int(p.series_id[i]), int(p.bucket[i])): (
            int(p.points[i]),
            int(p.numbers[i]),
            float(p.sum[i]),
            int(p.first_step[i]),
            p.first_value[i],
            int(p.last_step[i]),
            p.last_value[i],
            int(p.min_step[i]),
            p.min_value[i],
            int(p.max_step[i]),
            p.max_value[i],
        )
        for i in range(p.size)
    }


def _same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert len(got[key]) == len(want[key])
        for i, (a, b) in enumerate(zip(got[key], want[key])):
            if i == 2:  # the sum: added in another order
                assert a == pytest.approx(b, rel=1e-9, nan_ok=True), (key, got[key], want[key])
            else:
                assert a == b or (a != a and b != b), (key, got[key], want[key])  # NaN equals NaN here


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    series_id = np.sort(rng.integers(0, 3, n)).astype(np.int32)
    step = np.concatenate(
        [np.sort(rng.choice(5000, size=(series_id == s).sum(), replace=False)) - 100 for s in range(3)]
    )
    value = np.round(rng.standard_normal(n), 1)  # ties on purpose
    value[rng.random(n) < 0.1] = np.nan
    value[rng.random(n) < 0.01] = np.inf
    return series_id, step.astype(np.int64), value


@pytest.mark.parametrize("seed", range(5))
def test_partials_of_points_match_the_reference(seed: int) -> None:
    series_id, step, value = _points(np.random.default_rng(seed), 2000)
    for level in (0, 3, LEVEL_MIN, 9):
        _same(_as_dict(from_points(series_id, step, value, level)), _reference(series_id, step, value, level))


def test_every_level_is_the_coarsening_of_the_one_below() -> None:
    series_id, step, value = _points(np.random.default_rng(9), 3000)
    levels = all_levels(series_id, step, value)
    assert [level for level, _ in levels] == list(range(LEVEL_MIN, LEVEL_MAX + 1))
    for level, partials in levels:
        _same(_as_dict(partials), _reference(series_id, step, value, level))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(0, 8))
def test_combining_partials_of_any_split_is_exact(seed: int, parts: int, level: int) -> None:
    rng = np.random.default_rng(seed)
    series_id, step, value = _points(rng, int(rng.integers(1, 400)))
    cut = np.sort(rng.integers(0, step.size + 1, parts - 1))
    owner = np.searchsorted(cut, np.arange(step.size), side="right")
    rng.shuffle(owner)  # each part gets points from anywhere: out-of-order arrival
    pieces = []
    for part in range(parts):
        mine = owner == part
        if mine.any():
            pieces.append(from_points(series_id[mine], step[mine], value[mine], level))
    stacked = Partials(
        **{name: np.concatenate([getattr(p, name) for p in pieces]) for name in Partials.__dataclass_fields__}
    )
    _same(_as_dict(combine(stacked)), _reference(series_id, step, value, level))
    _same(_as_dict(coarser(combine(stacked), 2)), _reference(series_id, step, value, level + 2))


def test_level_for_gives_at_least_one_bucket_per_pixel() -> None:
    assert level_for(500, 1000) == 0
    assert level_for(1_000_000, 1000) == 9  # 1954 buckets of 512 steps
    for span in (1001, 4096, 10**6, 10**7, 2**40):
        level = level_for(span, 1000)
        assert span >> level >= 1000 or level == 0
        assert span >> (level + 1) < 1000 or level == LEVEL_MAX


def test_merges_are_size_tiered() -> None:
    base = 100
    assert merge_candidates({1: 100, 2: 100, 3: 90}, base) == []
    assert merge_candidates({1: 100, 2: 100, 3: 90, 4: 50}, base) == [1, 2, 3, 4]
    # four small ones merge before anything else; a large one waits for its peers
    sizes = {1: 5000, 2: 100, 3: 100, 4: 100, 5: 100, 6: 100}
    assert merge_candidates(sizes, base) == [2, 3, 4, 5]
    assert merge_candidates({1: 1600, 2: 1700, 3: 1800, 4: 1900, 5: 10}, base) == [1, 2, 3, 4]


def test_chunks_split_series_into_bounded_ranges() -> None:
    counts = [(1, 5), (2, 5), (4, 20), (7, 1), (8, 1)]
    assert chunks(counts, 10) == [(1, 2), (4, 4), (7, 8)]
    assert chunks([], 10) == []
    assert chunks(counts, 1000) == [(1, 8)]
