"""The seed's split, plus an optional hold-out of normal training beats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from training.config import TrainConfig
from training.data import Dataset

__all__ = ["Split", "make_split", "split_rows"]


@dataclass(frozen=True)
class Split:
    """Arrays of one experiment (raw units; labels 1 = normal).

    ``x_fit`` are the normal training beats the model learns from; ``x_holdout`` normal
    training beats kept aside (empty unless ``holdout_fraction`` > 0).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_fit: np.ndarray
    x_holdout: np.ndarray


def make_split(data: Dataset, config: TrainConfig) -> Split:
    """Split as the seed does: ``train_test_split(test_size, random_state)`` on all beats."""
    x_train, x_test, y_train, y_test = train_test_split(
        data.x,
        data.normal,
        test_size=config.split.test_size,
        random_state=config.split.random_state,
    )
    normal = x_train[y_train == 1]
    frac = config.training.holdout_fraction
    if frac > 0:
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(normal))
        n_hold = max(1, round(frac * len(normal)))
        hold, fit = normal[order[:n_hold]], normal[order[n_hold:]]
    else:
        hold, fit = normal[:0], normal
    return Split(x_train, y_train, x_test, y_test, fit, hold)


def split_rows(data: Dataset, config: TrainConfig) -> dict[str, np.ndarray]:
    """Row indices of :func:`make_split`'s train and test beats, in its order (``make_split``
    itself, run on the row numbers, so the split is the job's by construction)."""
    rows = Dataset(
        np.arange(len(data.x), dtype=np.float64)[:, None],
        data.normal,
        None,
        data.sha256,
        data.source,
    )
    split = make_split(rows, config)
    return {
        "train": split.x_train[:, 0].astype(np.int64),
        "test": split.x_test[:, 0].astype(np.int64),
    }
