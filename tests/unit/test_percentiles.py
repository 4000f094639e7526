"""Histogram percentiles over flat Arrow-style arrays, against a per-histogram reference."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runstream_service.store.queries import PERCENTILES, percentiles


def _reference(edges: list[float], counts: list[float], q: float) -> float:
    """One histogram: walk the buckets to the one holding the q-th percentile, interpolate inside it."""
    total = sum(counts)
    if total == 0:
        return math.nan
    target = total * q / 100.0
    running = 0.0
    for j, count in enumerate(counts):
        # q = 0 is the left edge of the first bucket holding anything.
        if (running + count > target) if q == 0 else (running + count >= target):
            share = 0.0 if count == 0 else min(max((target - running) / count, 0.0), 1.0)
            return edges[j] + share * (edges[j + 1] - edges[j])
        running += count
    return edges[-1]


def _flat(histograms: list[tuple[list[float], list[float]]], skip: int) -> tuple[np.ndarray, ...]:
    """Flat values and offsets as Arrow list columns hold them, after `skip` leading values."""
    edges = np.array([0.0] * skip + [e for h in histograms for e in h[0]])
    counts = np.array([0.0] * skip + [c for h in histograms for c in h[1]])
    edge_offsets = np.cumsum([skip] + [len(h[0]) for h in histograms])
    count_offsets = np.cumsum([skip] + [len(h[1]) for h in histograms])
    return edges, edge_offsets, counts, count_offsets


@st.composite
def histogram(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    buckets = draw(st.integers(1, 8))
    start = draw(st.floats(-1e3, 1e3))
    widths = draw(st.lists(st.floats(0.01, 100.0), min_size=buckets, max_size=buckets))
    edges = [start + w for w in np.concatenate(([0.0], np.cumsum(widths))).tolist()]
    counts = draw(st.lists(st.sampled_from([0.0, 0.0, 1.0, 2.0, 7.5, 1e6]), min_size=buckets, max_size=buckets))
    return edges, counts


@settings(max_examples=300, deadline=None)
@given(st.lists(histogram(), min_size=1, max_size=12), st.integers(0, 3))
def test_every_histogram_as_if_alone(histograms: list[tuple[list[float], list[float]]], skip: int) -> None:
    got = percentiles(*_flat(histograms, skip), PERCENTILES)
    assert got.shape == (len(histograms), len(PERCENTILES))
    for i, (edges, counts) in enumerate(histograms):
        want = [_reference(edges, counts, q) for q in PERCENTILES]
        np.testing.assert_allclose(got[i], want, rtol=1e-9, atol=1e-9)


def test_known_values() -> None:
    # 10 buckets of width 1 over [0, 10] with 10 each: the q-th percentile is q / 10; an empty one is NaN.
    edges, counts = [float(e) for e in range(11)], [10.0] * 10
    got = percentiles(*_flat([(edges, counts), ([0.0, 1.0], [0.0])], 0), (0.0, 25.0, 50.0, 100.0))
    np.testing.assert_allclose(got[0], [0.0, 2.5, 5.0, 10.0])
    assert np.isnan(got[1]).all()
    assert percentiles(
        np.zeros(0), np.zeros(1, dtype=np.int64), np.zeros(0), np.zeros(1, dtype=np.int64), (50.0,)
    ).shape == (0, 1)
