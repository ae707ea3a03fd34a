"""Slow, obvious reference implementations that tests compare the fast code against."""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_smooth"]


def gaussian_smooth(r: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass of each row: explicit kernel (radius 4 sigma), edges repeated."""
    radius = int(4 * sigma + 0.5)
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(r, ((0, 0), (radius, radius)), mode="edge")
    return np.stack([np.convolve(row, kernel, mode="valid") for row in padded])
