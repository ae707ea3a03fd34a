"""Window validation: exactly ``window_length`` finite numbers, or a precise error."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from detector.errors import InvalidWindowError

__all__ = ["FLAT_WINDOW", "REASONS", "WINDOW_LENGTH", "validate_batch", "validate_window"]

#: Samples per ECG5000 beat.
WINDOW_LENGTH = 140

#: A window with no shape to score (a flat line: lead off); raised by the detector's
#: ``score`` (``detector.normalise.flat_rows``), not by the checks here.
FLAT_WINDOW = "flat_window"

#: Stable reason codes the checks here can raise.
REASONS = ("empty", "wrong_shape", "not_numeric", "wrong_length", "non_finite")


def validate_window(samples: Any, window_length: int = WINDOW_LENGTH) -> np.ndarray:
    """Check one window and return it as a float32 vector.

    Parameters
    ----------
    samples : sequence of numbers or ndarray
        The window as received (a decoded JSON list, a list of floats or a 1-D array).
    window_length : int, default 140
        Number of samples a window must have.

    Returns
    -------
    numpy.ndarray
        Shape ``(window_length,)``, dtype float32.

    Raises
    ------
    InvalidWindowError
        With ``reason`` one of :data:`REASONS`.
    """
    if isinstance(samples, np.ndarray):
        return _check_array(samples, window_length, index=None)
    _check_sequence(samples, window_length)
    for i, value in enumerate(samples):
        _check_sample(i, value, window_length)
    if len(samples) != window_length:
        raise InvalidWindowError(
            "wrong_length",
            f"samples: got {len(samples)} values, expected exactly {window_length}",
        )
    return _as_float32(samples)


def _check_sequence(samples: Any, window_length: int) -> None:
    """A non-empty sequence (not a string, bytes or mapping)."""
    if (
        samples is None
        or isinstance(samples, (str, bytes, dict))
        or not isinstance(samples, Sequence)
    ):
        raise InvalidWindowError(
            "wrong_shape",
            f"samples: expected a list of {window_length} numbers, got {type(samples).__name__}",
        )
    if len(samples) == 0:
        raise InvalidWindowError(
            "empty", f"samples: the list is empty; send {window_length} numbers"
        )


def _check_sample(i: int, value: Any, window_length: int) -> None:
    """One element: a finite int or float (bool, nested lists and strings are refused)."""
    # bool is an int subclass in Python but is never a sample value.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, (list, tuple, dict)):
            raise InvalidWindowError(
                "wrong_shape",
                f"samples[{i}]: nested {type(value).__name__}; samples must be a flat "
                f"list of {window_length} numbers",
            )
        raise InvalidWindowError(
            "not_numeric",
            f"samples[{i}]: {value!r} is not a number; send only ints or floats",
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidWindowError(
            "non_finite", f"samples[{i}]: {value!r} is not finite; send finite numbers only"
        )


def _as_float32(samples: Sequence[int | float]) -> np.ndarray:
    """Checked numbers as float32, refusing those beyond its range (huge ints, 1e300)."""
    try:
        arr = np.asarray(samples, dtype=np.float64)
    except OverflowError:  # an integer literal beyond float64 (e.g. 10**400)
        raise InvalidWindowError(
            "non_finite", "samples: an integer is too large for a float"
        ) from None
    # Finite float64 values can still overflow float32 (e.g. 1e300).
    if np.abs(arr).max() > np.finfo(np.float32).max:
        raise InvalidWindowError(
            "non_finite", "samples: a value exceeds the float32 range (~3.4e38)"
        )
    return arr.astype(np.float32)


def _check_array(arr: np.ndarray, window_length: int, index: int | None) -> np.ndarray:
    where = "samples" if index is None else f"windows[{index}]"
    if arr.size == 0:
        raise InvalidWindowError("empty", f"{where}: the window is empty", index)
    if arr.ndim != 1:
        raise InvalidWindowError(
            "wrong_shape", f"{where}: expected a 1-D window, got shape {arr.shape}", index
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidWindowError(
            "not_numeric", f"{where}: dtype {arr.dtype} is not a real number type", index
        )
    if arr.shape[0] != window_length:
        raise InvalidWindowError(
            "wrong_length",
            f"{where}: got {arr.shape[0]} values, expected exactly {window_length}",
            index,
        )
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise InvalidWindowError(
            "non_finite", f"{where}[{bad}]: {arr[bad]!r} is not finite (in float32)", index
        )
    return out


def validate_batch(windows: Any, window_length: int = WINDOW_LENGTH) -> np.ndarray:
    """Check a batch of windows at once (vectorised) and return a float32 matrix.

    Parameters
    ----------
    windows : array-like, shape (n, window_length)
        The windows to score.
    window_length : int, default 140
        Number of samples a window must have.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, window_length)``, dtype float32, C-contiguous.

    Raises
    ------
    InvalidWindowError
        For the first offending window; ``index`` says which one.
    """
    try:
        arr = np.asarray(windows)
    except ValueError as exc:  # ragged nested lists
        raise InvalidWindowError(
            "wrong_shape",
            f"windows: ragged input ({exc}); every window needs {window_length} samples",
        ) from exc
    if arr.ndim == 1 and arr.size == window_length and arr.dtype != object:
        arr = arr.reshape(1, window_length)
    if arr.ndim != 2:
        raise InvalidWindowError(
            "wrong_shape",
            f"windows: expected shape (n, {window_length}), got {arr.shape}",
        )
    if arr.shape[0] == 0:
        return np.empty((0, window_length), dtype=np.float32)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        for row in arr:  # name the first bad element precisely
            validate_window(list(row), window_length)
        raise InvalidWindowError("not_numeric", f"windows: dtype {arr.dtype} is not numeric")
    if arr.shape[1] != window_length:
        raise InvalidWindowError(
            "wrong_length",
            f"windows: each window has {arr.shape[1]} values, expected exactly {window_length}",
        )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        row, col = (int(v) for v in np.argwhere(~finite)[0])
        raise InvalidWindowError(
            "non_finite",
            f"windows[{row}][{col}]: {arr[row, col]!r} is not finite (in float32)",
            row,
        )
    return out
