"""Training-time augmentation: seeded warped copies of the normal beats."""

from __future__ import annotations

import numpy as np

from training.augment import augment
from training.config import AugmentConfig


def test_copies_are_seeded_warps_within_the_bounds() -> None:
    x = np.random.default_rng(0).standard_normal((20, 140)).astype(np.float32)
    off = augment(x, AugmentConfig(), seed=1)
    assert off.shape == (0, 140)
    cfg = AugmentConfig(copies=2, max_shift=3.0, max_stretch=0.0)
    a, b = augment(x, cfg, seed=1), augment(x, cfg, seed=1)
    assert a.shape == (40, 140)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, augment(x, cfg, seed=2))
    # Shifts only: each copy is a (fractional) periodic shift, so its mean is kept and every
    # sample lies between two neighbouring input samples.
    np.testing.assert_allclose(a[:20].mean(axis=1), x.mean(axis=1), atol=1e-5)
    assert not np.array_equal(a[:20], x)
