"""Precision-recall curves in TensorBoard's layout. Pure: arrays in, a 6 x T float64 array out.

The rows are true positives, false positives, true negatives, false negatives, precision and recall,
one column per threshold i / (T - 1), i = 0 .. T-1: what TensorBoard's pr_curves plugin stores and
what the wire's PrCurves message carries. `compute_curve` follows TensorBoard's pr_curve summary
(and tensorboardX's copy of it), so a curve logged here equals the one those writers log.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_THRESHOLDS", "check_raw_curve", "compute_curve"]

MAX_THRESHOLDS = 10_000
_MINIMUM_COUNT = 1e-7  # TensorBoard's guard against dividing by zero


def _check_thresholds(tag: str, num_thresholds: object) -> int:
    if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)):
        raise TypeError(f"num_thresholds of PR curve {tag!r} must be an int, not {type(num_thresholds).__name__}")
    if not 2 <= int(num_thresholds) <= MAX_THRESHOLDS:
        raise ValueError(f"num_thresholds of PR curve {tag!r} must be 2 to {MAX_THRESHOLDS}, got {num_thresholds}")
    return int(num_thresholds)


def compute_curve(
    tag: str, labels: np.ndarray, predictions: np.ndarray, num_thresholds: Any, weights: np.ndarray | None
) -> np.ndarray:
    """The curve of binary `labels` (0/1 or bool) and `predictions` in [0, 1], optionally weighted.

    Raises with what is wrong: shapes that differ, predictions outside [0, 1] or NaN, labels that are
    not 0 or 1, negative or non-finite weights."""
    thresholds = _check_thresholds(tag, num_thresholds)
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if labels.size != predictions.size or labels.size == 0:
        raise ValueError(
            f"PR curve {tag!r} needs one label per prediction (and at least one): got {labels.size} labels and "
            f"{predictions.size} predictions"
        )
    if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_):
        raise TypeError(f"labels of PR curve {tag!r} must be 0/1 numbers or bools, not dtype {labels.dtype}")
    float_labels = labels.astype(np.float64)
    if not np.isin(float_labels, (0.0, 1.0)).all():
        raise ValueError(f"labels of PR curve {tag!r} must be 0 or 1 (binary ground truth)")
    if not (predictions.min() >= 0.0 and predictions.max() <= 1.0):  # False for NaN too
        raise ValueError(f"predictions of PR curve {tag!r} must be probabilities in [0, 1] (no NaN)")
    weight: np.ndarray | float = 1.0
    if weights is not None:
        weight = np.asarray(weights, dtype=np.float64)
        if weight.size != 1:
            weight = weight.reshape(-1)
            if weight.size != labels.size:
                raise ValueError(f"weights of PR curve {tag!r} must be one number, or one per prediction")
        if not (np.min(weight) >= 0 and np.max(weight) < np.inf):
            raise ValueError(f"weights of PR curve {tag!r} must be finite and >= 0")
    buckets = np.floor(predictions * (thresholds - 1)).astype(np.int64)
    tp_buckets = np.bincount(buckets, weights=float_labels * weight, minlength=thresholds)
    fp_buckets = np.bincount(buckets, weights=(1.0 - float_labels) * weight, minlength=thresholds)
    tp = np.cumsum(tp_buckets[::-1])[::-1]
    fp = np.cumsum(fp_buckets[::-1])[::-1]
    tn = fp[0] - fp
    fn = tp[0] - tp
    precision = tp / np.maximum(_MINIMUM_COUNT, tp + fp)
    recall = tp / np.maximum(_MINIMUM_COUNT, tp + fn)
    return np.stack((tp, fp, tn, fn, precision, recall)).astype(np.float64)


def check_raw_curve(tag: str, columns: tuple[Any, ...]) -> np.ndarray:
    """A curve given as its six rows (true/false positives, true/false negatives, precision, recall):
    each a sequence of T >= 2 numbers: counts finite and >= 0, precision and recall in [0, 1] or NaN
    (the server's rules)."""
    names: tuple[str, ...] = (
        "true_positive_counts",
        "false_positive_counts",
        "true_negative_counts",
        "false_negative_counts",
    )
    names = (*names, "precision", "recall")
    rows = []
    for name, column in zip(names, columns):
        row = np.asarray(column, dtype=np.float64).reshape(-1)
        if name in ("precision", "recall"):  # NaN where undefined (0/0), as TensorBoard keeps it
            if ((row < 0) | (row > 1)).any() or np.isinf(row).any():
                raise ValueError(f"{name} of PR curve {tag!r} must be in [0, 1] (or NaN)")
        elif not np.isfinite(row).all():
            raise ValueError(f"{name} of PR curve {tag!r} must be finite numbers")
        rows.append(row)
    sizes = {row.size for row in rows}
    if len(sizes) != 1:
        raise ValueError(f"the six rows of PR curve {tag!r} must have one length each, got {[r.size for r in rows]}")
    _check_thresholds(tag, sizes.pop())
    data = np.stack(rows)
    if (data[:4] < 0).any():
        raise ValueError(f"the counts of PR curve {tag!r} must be >= 0")
    return data
