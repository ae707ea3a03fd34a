"""What the worker needs of a model: the :class:`Scorer` protocol.

:class:`detector.Artifact` satisfies it; so do the test fakes. The processor holds one
reference to a scorer (:attr:`pipeline.processor.WindowProcessor.model`): a model roll-out
(:mod:`pipeline.rollout`) replaces that reference between batches, and every batch takes it
once, so each record names the version that scored it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["HasValue", "Scorer"]


class HasValue(Protocol):
    """A decision threshold (:class:`detector.Threshold`): anomalous when score > value."""

    @property
    def value(self) -> float: ...


class Scorer(Protocol):
    """A verified model the worker can serve."""

    @property
    def version(self) -> str:
        """The model version every score and alert record names."""
        ...

    @property
    def threshold(self) -> HasValue:
        """The decision threshold."""
        ...

    def flat(self, windows: np.ndarray) -> np.ndarray:
        """Which windows the model refuses to score (near-zero variance: a flat line)."""
        ...

    def predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and decisions (``score > threshold``) of a ``(n, window_length)`` batch."""
        ...
