"""Vectorised binning gives exactly what np.histogram gives; summaries of pre-binned histograms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from runstream._histograms import bin_equal_width, summarize_binned

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's own np.histogram overflows near 1e300
@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40), elements=finite),
    st.integers(1, 70),
)
def test_equal_width_binning_matches_numpy(values: np.ndarray, bins: int) -> None:
    block = bin_equal_width(values, bins)
    for row, counts, edges in zip(values, block.counts, block.edges, strict=True):
        try:
            want_counts, want_edges = np.histogram(row, bins=bins)
        except ValueError:  # "too many bins for data range": we keep one bucket instead of failing
            assert counts.tolist() == [row.size] and edges[0] <= row.min() and row.max() < edges[1]
            continue
        assert np.array_equal(counts, want_counts)
        assert np.array_equal(edges, want_edges)
    assert np.array_equal(block.min, values.min(axis=1)) and np.array_equal(block.max, values.max(axis=1))


def test_adversarial_rows_match_numpy() -> None:
    rows = [
        np.full(12, 3.0),  # zero width: numpy widens to [2.5, 3.5]
        np.array([0.0, 0.1, 0.2, 0.3, 0.30000000000000004, 1.0] * 2),  # values on and next to edges
        np.linspace(-1, 1, 12),
        np.array([1e-300, 2e-300] * 6),
    ]
    for bins in (1, 3, 10, 64):
        block = bin_equal_width(np.stack(rows), bins)
        for row, counts in zip(rows, block.counts, strict=True):
            assert np.array_equal(counts, np.histogram(row, bins=bins)[0])


def test_summaries_of_prebinned_histograms() -> None:
    block = summarize_binned(
        [np.array([0.0, 1.0, 2.0, 0.0]), np.array([0.0, 0.0]), np.array([4.0])],
        [np.array([0.0, 1.0, 2.0, 3.0, 4.0]), np.array([5.0, 6.0, 7.0]), np.array([-1.0, 1.0])],
    )
    assert block.min.tolist() == [1.0, 5.0, -1.0]  # left edge of the first non-empty bucket
    assert block.max.tolist() == [3.0, 7.0, 1.0]  # right edge of the last
    assert block.sum.tolist() == [1.5 + 2 * 2.5, 0.0, 0.0]
    assert block.sum_squares.tolist() == [1.5**2 + 2 * 2.5**2, 0.0, 0.0]
