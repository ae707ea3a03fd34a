"""Training-time augmentation: more normal beats, cut a little differently.

Each copy of the normal training beats is warped by a random shift and stretch
(:func:`detector.align.warp`, the same periodic resampling the robustness perturbations use),
so the autoencoder learns that a beat cut a few samples late, or whose length was misjudged,
is still a normal beat. Seeded: the same config gives the same copies.
"""

from __future__ import annotations

import numpy as np

from detector.align import warp
from training.config import AugmentConfig

__all__ = ["augment"]


def augment(x: np.ndarray, config: AugmentConfig, seed: int) -> np.ndarray:
    """``config.copies`` warped copies of the beats ``x`` (shape ``(copies * n, m)``).

    Parameters
    ----------
    x : ndarray, shape (n, m)
        Normal training beats (raw units).
    config : AugmentConfig
        How many copies, and the largest shift (samples) and stretch (fraction).
    seed : int
        Seeds the random shifts and stretches.
    """
    arr = np.asarray(x, dtype=np.float32)
    n, m = arr.shape
    if config.copies == 0 or n == 0:
        return np.empty((0, m), dtype=np.float32)
    rng = np.random.default_rng([int(seed), 0xA6])
    out = []
    for _ in range(config.copies):
        shift = rng.uniform(-config.max_shift, config.max_shift, n)
        scale = 1.0 + rng.uniform(-config.max_stretch, config.max_stretch, n)
        out.append(warp(arr, shift, scale))
    return np.concatenate(out)
