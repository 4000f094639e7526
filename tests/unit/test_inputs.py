"""Caller-side checks: mistakes raise at the call, with a message that says what was wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from runstream import _inputs


@pytest.mark.parametrize("step", [0, 5, np.int64(7), 3.0, np.float32(2.0)])
def test_valid_steps_become_ints(step: object) -> None:
    result = _inputs.check_step(step)
    assert isinstance(result, int) and result == int(step)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("step", "error", "words"),
    [
        (math.nan, ValueError, "finite"),
        (math.inf, ValueError, "finite"),
        (-1, ValueError, ">= 0"),
        (1.5, ValueError, "whole number"),
        (True, TypeError, "bool"),
        ("3", TypeError, "integer >= 0, not str"),
        (2**63, ValueError, "2**63"),
    ],
)
def test_bad_steps_raise_with_a_reason(step: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words.replace("*", r"\*")):
        _inputs.check_step(step)


@pytest.mark.parametrize(
    ("tag", "error", "words"),
    [
        (3, TypeError, "must be a str"),
        ("", ValueError, "non-empty"),
        ("x" * 257, ValueError, "256 bytes"),
        ("a\x00b", ValueError, "NUL"),
        ("\ud800", ValueError, "UTF-8"),
    ],
)
def test_bad_tags(tag: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        _inputs.check_tag(tag)


def test_tag_limit_counts_utf8_bytes() -> None:
    assert _inputs.check_tag("é" * 128) == "é" * 128
    with pytest.raises(ValueError):
        _inputs.check_tag("é" * 129)


@pytest.mark.parametrize("value", [1, 2.5, True, np.float32(0.25), np.int64(4), np.array(1.5), np.array([2.0])])
def test_numbers_become_floats(value: object) -> None:
    assert _inputs.to_float("t", value) == float(np.asarray(value).reshape(-1)[0])


@pytest.mark.parametrize("value", ["1.0", None, [1.0, 2.0], np.zeros(3), complex(1, 2)])
def test_non_numbers_are_refused_naming_the_tag(value: object) -> None:
    with pytest.raises(TypeError, match="'loss'|elements"):
        _inputs.to_float("loss", value)


def test_images_are_normalised_to_hwc() -> None:
    assert _inputs.check_image(np.zeros((5, 7), np.uint8)).shape == (5, 7, 1)
    assert _inputs.check_image(np.zeros((5, 7, 3), np.uint8)).shape == (5, 7, 3)
    chw = np.arange(3 * 5 * 7, dtype=np.uint8).reshape(3, 5, 7)
    hwc = _inputs.check_image(chw)
    assert hwc.shape == (5, 7, 3) and (hwc[:, :, 1] == chw[1]).all()
    assert _inputs.check_image(Image.new("RGB", (7, 5))).shape == (5, 7, 3)
    assert _inputs.check_image(np.zeros((4, 4, 4), np.float32)).dtype == np.float32


def test_the_caller_owns_its_array_after_the_call() -> None:
    original = np.zeros((4, 4, 3), np.uint8)
    kept = _inputs.check_image(original)
    original[:] = 255
    assert kept.max() == 0


@pytest.mark.parametrize(
    ("image", "error", "words"),
    [
        (np.zeros((2, 3, 4, 5), np.uint8), ValueError, "HW, HWC or CHW"),
        (np.zeros((5, 7, 2), np.uint8), ValueError, "1, 3 or 4 channels"),
        (np.zeros((5, 7), np.int32), TypeError, "dtype"),
        (np.zeros((0, 7), np.uint8), ValueError, "between 1 and 8192"),
    ],
)
def test_bad_images(image: np.ndarray, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        _inputs.check_image(image)


def test_prebinned_histograms_need_one_more_edge_than_counts() -> None:
    counts, edges = _inputs.check_counts_edges([1, 2], [0.0, 1.0, 2.0])
    assert counts.tolist() == [1.0, 2.0] and edges.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="one more edge"):
        _inputs.check_counts_edges([1, 2, 3], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="ascending"):
        _inputs.check_counts_edges([1, 2], [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=">= 0"):
        _inputs.check_counts_edges([1, -2], [0.0, 1.0, 2.0])


def test_bins() -> None:
    assert _inputs.check_bins(10) == 10
    assert _inputs.check_bins("auto") == "auto"
    with pytest.raises(ValueError, match="between 1 and 10000"):
        _inputs.check_bins(0)
    with pytest.raises(ValueError, match="not one of"):
        _inputs.check_bins("magic")
