"""How a window's residual becomes its anomaly score (pure NumPy/SciPy, no model).

Two options shape the score beyond the seed's plain MAE, both chosen on validation beats of
the training split (docs/model-quality.md, "How the recommended preset was chosen", has the
tables):

* ``score_smoothing`` (sigma, samples): the residual is low-passed by a Gaussian before its
  mean absolute value is taken, so sample-to-sample noise on a normal beat stops counting as
  shape error.
* ``noise_discount`` (weight ``w``): the smoothed MAE is divided by
  ``1 + w * noise / noise_reference``, where ``noise`` is what the same low-pass removes from
  the *input* beat (its mean absolute high-frequency part) and ``noise_reference`` is the
  median of that over the normal beats the model was fitted on. A noisy recording also
  leaves slower wander in the residual that the low-pass keeps; scaling by the beat's own
  noise level discounts it, while a clean beat of abnormal shape keeps its full score.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError
from detector.validation import WINDOW_LENGTH

__all__ = [
    "MAX_NOISE_DISCOUNT",
    "check_noise_discount",
    "check_score_smoothing",
    "discount",
    "max_score_smoothing",
    "noise_level",
    "residual_score",
    "smooth",
    "smoothing_matrix",
]

#: Largest allowed ``noise_discount`` weight; beyond it noise alone decides the score.
MAX_NOISE_DISCOUNT = 10.0


def _is_number(value: Any) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and bool(np.isfinite(value))


def max_score_smoothing(window_length: int = WINDOW_LENGTH) -> float:
    """Widest allowed ``score_smoothing`` sigma: ``window_length / 8`` samples."""
    return window_length / 8


def check_score_smoothing(value: Any, window_length: int = WINDOW_LENGTH) -> float:
    """Validate a ``score_smoothing`` sigma (samples): a finite number in [0, window_length / 8].

    Raises
    ------
    DetectorConfigError
        Naming the value and the allowed range.
    """
    limit = max_score_smoothing(window_length)
    if not _is_number(value) or not 0 <= value <= limit:
        raise DetectorConfigError(
            f"score_smoothing: {value!r} must be a number from 0 (plain MAE) to {limit:g} "
            "samples (window_length / 8; wider blurs the beat's shape itself)"
        )
    return float(value)


def check_noise_discount(value: Any, score_smoothing: float) -> float:
    """Validate a ``noise_discount`` weight: a number in [0, 10], > 0 only with smoothing.

    Raises
    ------
    DetectorConfigError
        Naming the value, the allowed range, or the missing ``score_smoothing``.
    """
    if not _is_number(value) or not 0 <= value <= MAX_NOISE_DISCOUNT:
        raise DetectorConfigError(
            f"noise_discount: {value!r} must be a number from 0 (off) to {MAX_NOISE_DISCOUNT:g}"
        )
    if value > 0 and score_smoothing <= 0:
        raise DetectorConfigError(
            f"noise_discount: {value!r} needs score_smoothing > 0 (the noise level is what "
            "that low-pass removes from the beat); set score_smoothing, e.g. 2, or "
            "noise_discount: 0"
        )
    return float(value)


def smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of each row (``sigma`` samples; edges repeat the end samples)."""
    # scipy's C implementation; "nearest" repeats the edge samples, so the first and
    # last samples of a beat are not pulled towards zero.
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(values, sigma, axis=1, mode="nearest")


@lru_cache(maxsize=16)
def smoothing_matrix(m: int, sigma: float) -> np.ndarray:
    """``G`` with ``r @ G == smooth(r, sigma)`` for rows of length ``m`` (the identity for
    ``sigma`` 0; float32, read-only).

    One BLAS product per batch instead of a filter call, for callers that smooth many small
    batches (the length search, :mod:`detector.length`, smooths a residual per length).
    """
    if sigma <= 0:
        g = np.eye(m, dtype=np.float32)
    else:
        g = np.asarray(smooth(np.eye(m, dtype=np.float64), sigma), dtype=np.float32)
    g.setflags(write=False)
    return g


def discount(error: np.ndarray, noise: np.ndarray, weight: float, reference: float) -> np.ndarray:
    """The noise discount: ``error / (1 + weight * noise / reference)``."""
    return error / (1.0 + weight * noise / reference)


def noise_level(z: np.ndarray, sigma: float) -> np.ndarray:
    """Per-row mean absolute high-frequency part: ``mean(|z - smooth(z, sigma)|)``."""
    return np.mean(np.abs(z - smooth(z, sigma)), axis=1)


def residual_score(
    z: np.ndarray,
    reconstruction: np.ndarray,
    score_smoothing: float = 0.0,
    noise_discount: float = 0.0,
    noise_reference: float | None = None,
) -> np.ndarray:
    """Anomaly scores of normalised windows ``z`` from their reconstructions (see module).

    Parameters
    ----------
    z, reconstruction : ndarray, shape (n, window_length)
        Normalised windows and the model's reconstructions of them.
    score_smoothing : float
        Gaussian sigma of the residual low-pass; 0 = plain MAE.
    noise_discount : float
        Weight of the noise discount; 0 = off.
    noise_reference : float, optional
        Median noise level of the fitted normal beats; required when ``noise_discount`` > 0.
    """
    residual = reconstruction - z
    if score_smoothing > 0:
        residual = smooth(residual, score_smoothing)
    scores = np.mean(np.abs(residual), axis=1)
    if noise_discount > 0:
        if noise_reference is None or not noise_reference > 0:
            raise DetectorConfigError(
                f"noise_reference: {noise_reference!r}; noise_discount needs the positive "
                "median noise level of the fitted beats (fit the detector or load an artifact)"
            )
        scores = discount(scores, noise_level(z, score_smoothing), noise_discount, noise_reference)
    return scores
