"""Histogram binning and summaries, many histograms at a time. Pure NumPy, no per-value Python.

Binning with an int number of equal-width bins gives exactly what `np.histogram`
gives for the same values as float64, including its rules for values on an edge,
but bins a whole block of same-sized histograms in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BinnedBlock:
    """n histograms: bucket k of histogram i is [edges[i][k], edges[i][k+1]); the last includes its right edge."""

    counts: list[np.ndarray]  # n arrays of float64
    edges: list[np.ndarray]  # n arrays of float64, one longer than counts
    min: np.ndarray  # float64, n
    max: np.ndarray
    sum: np.ndarray
    sum_squares: np.ndarray


def bin_equal_width(values: np.ndarray, bins: int) -> BinnedBlock:
    """Bin each row of a 2-D float64 array of finite values into `bins` equal-width buckets over its range."""
    rows = values.shape[0]
    lo = values.min(axis=1)
    hi = values.max(axis=1)
    flat = lo == hi  # as np.histogram: a range of width 0 becomes [v - 0.5, v + 0.5]
    first = np.where(flat, lo - 0.5, lo)
    last = np.where(flat, hi + 0.5, hi)
    edges = np.linspace(first, last, bins + 1, axis=1)
    degenerate = np.asarray(~(edges[:, 1:] > edges[:, :-1]).all(axis=1))
    if degenerate.any():
        return _with_degenerate_rows(values, bins, degenerate)
    with np.errstate(over="ignore", invalid="ignore"):  # as in np.histogram, for ranges near the float64 limits
        index = (((values - first[:, None]) / (last - first)[:, None]) * bins).astype(np.intp)
    index[index == bins] -= 1
    index -= values < np.take_along_axis(edges, index, axis=1)
    index += (values >= np.take_along_axis(edges, index + 1, axis=1)) & (index != bins - 1)
    index += (np.arange(rows) * bins)[:, None]
    counts = np.bincount(index.ravel(), minlength=rows * bins).reshape(rows, bins).astype(np.float64)
    return BinnedBlock(
        counts=list(counts),
        edges=list(edges),
        min=lo,
        max=hi,
        sum=values.sum(axis=1),
        sum_squares=np.einsum("ij,ij->i", values, values),
    )


def _with_degenerate_rows(values: np.ndarray, bins: int, degenerate: np.ndarray) -> BinnedBlock:
    """Rows whose range is too narrow for `bins` distinct float64 edges (np.histogram raises on
    them) get a single bucket that holds all their values; the other rows are binned as usual."""
    usual = bin_equal_width(values[~degenerate], bins) if not degenerate.all() else None
    counts: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    taken = 0
    for row, narrow in zip(values, degenerate, strict=True):
        if narrow:
            lo, hi = float(row.min()), float(row.max())
            upper = np.nextafter(hi, np.inf)
            bounds = [lo, upper] if np.isfinite(upper) else [np.nextafter(lo, -np.inf), hi]
            counts.append(np.array([float(row.size)]))
            edges.append(np.array(bounds, dtype=np.float64))
        else:
            assert usual is not None
            counts.append(usual.counts[taken])
            edges.append(usual.edges[taken])
            taken += 1
    return BinnedBlock(
        counts=counts,
        edges=edges,
        min=values.min(axis=1),
        max=values.max(axis=1),
        sum=values.sum(axis=1),
        sum_squares=np.einsum("ij,ij->i", values, values),
    )


def summarize_binned(counts: list[np.ndarray], edges: list[np.ndarray]) -> BinnedBlock:
    """Min, max, sum and sum of squares of already-binned histograms, estimated from their buckets.

    Min and max are the outer edges of the first and last non-empty bucket; sums take
    every value at its bucket's centre.
    """
    sizes = np.fromiter(map(len, counts), np.intp, len(counts))
    flat_counts = np.concatenate(counts)
    flat_edges = np.concatenate(edges)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    # Edge j of histogram i is at starts[i] + i + j in flat_edges.
    owner = np.repeat(np.arange(len(counts)), sizes)
    left = flat_edges[np.arange(flat_counts.size) + owner]
    right = flat_edges[np.arange(flat_counts.size) + owner + 1]
    centers = (left + right) / 2
    weighted = flat_counts * centers
    nonzero = flat_counts > 0
    positions = np.arange(flat_counts.size)
    first = np.minimum.reduceat(np.where(nonzero, positions, flat_counts.size), starts)
    last = np.maximum.reduceat(np.where(nonzero, positions, -1), starts)
    empty = last < 0
    lo = np.where(empty, left[starts], left[np.where(empty, starts, first)])
    ends = starts + sizes - 1
    hi = np.where(empty, right[ends], right[np.where(empty, ends, last)])
    return BinnedBlock(
        counts=counts,
        edges=edges,
        min=lo,
        max=hi,
        sum=np.add.reduceat(weighted, starts),
        sum_squares=np.add.reduceat(weighted * centers, starts),
    )
