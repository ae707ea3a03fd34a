"""Every validation reason code, for single windows and batches."""

from __future__ import annotations

import numpy as np
import pytest

from detector import InvalidWindowError
from detector.validation import REASONS, validate_batch, validate_window

GOOD = [0.1] * 140


@pytest.mark.parametrize(
    ("samples", "reason", "fragment"),
    [
        ([], "empty", "empty"),
        (None, "wrong_shape", "NoneType"),
        ("1,2,3", "wrong_shape", "str"),
        ({"a": 1}, "wrong_shape", "dict"),
        ([[0.1] * 140], "wrong_shape", "nested"),
        ([0.1] * 139 + ["x"], "not_numeric", "samples[139]"),
        ([0.1] * 70 + [None] + [0.1] * 69, "not_numeric", "samples[70]"),
        ([True] + [0.1] * 139, "not_numeric", "samples[0]"),
        ([0.1] * 139, "wrong_length", "got 139"),
        ([0.1] * 141, "wrong_length", "got 141"),
        ([float("nan")] + [0.1] * 139, "non_finite", "samples[0]"),
        ([0.1] * 5 + [float("inf")] + [0.1] * 134, "non_finite", "samples[5]"),
        ([1e300] + [0.1] * 139, "non_finite", "float32"),
    ],
)
def test_validate_window_reasons(samples: object, reason: str, fragment: str) -> None:
    with pytest.raises(InvalidWindowError) as info:
        validate_window(samples)
    assert info.value.reason == reason
    assert reason in REASONS
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)  # callers may catch ValueError


def test_every_reason_code_is_reachable() -> None:
    seen = set()
    for bad in ([], None, ["x"] * 140, [0.1] * 3, [float("nan")] * 140):
        try:
            validate_window(bad)
        except InvalidWindowError as exc:
            seen.add(exc.reason)
    assert seen == set(REASONS)


def test_valid_window_becomes_float32() -> None:
    out = validate_window([1] * 70 + [0.5] * 70)
    assert out.dtype == np.float32 and out.shape == (140,)


def test_array_input_checked_too() -> None:
    with pytest.raises(InvalidWindowError) as info:
        validate_window(np.zeros((2, 70)))
    assert info.value.reason == "wrong_shape"
    with pytest.raises(InvalidWindowError) as info:
        validate_window(np.array(["a"] * 140))
    assert info.value.reason == "not_numeric"


def test_batch_reports_offending_row() -> None:
    batch = np.zeros((5, 140))
    batch[3, 17] = np.inf
    with pytest.raises(InvalidWindowError) as info:
        validate_batch(batch)
    assert info.value.reason == "non_finite"
    assert info.value.index == 3
    assert "windows[3][17]" in str(info.value)


def test_batch_shapes() -> None:
    assert validate_batch(np.zeros(140)).shape == (1, 140)
    assert validate_batch(np.zeros((0, 140))).shape == (0, 140)
    with pytest.raises(InvalidWindowError) as info:
        validate_batch(np.zeros((4, 139)))
    assert info.value.reason == "wrong_length"
    with pytest.raises(InvalidWindowError) as info:
        validate_batch(np.zeros((2, 2, 140)))
    assert info.value.reason == "wrong_shape"
