"""Decision thresholds, kept apart from scoring (as river's ``AnomalyFilter``).

A :class:`Threshold` turns reconstruction errors into anomaly decisions. It is fitted from
scores of *normal* beats only, so no test label is ever needed to choose it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError

__all__ = ["POLICIES", "Threshold", "fit_best_f1_threshold", "fit_threshold"]

#: Label-free policies. ``mean_std``: mean + k·std of training MAE (the seed, k = 1);
#: ``quantile``: the q-quantile of MAE on held-out normal beats (1 - q = target false-alarm rate).
POLICIES = ("mean_std", "quantile")


@dataclass(frozen=True)
class Threshold:
    """A fitted decision threshold.

    Parameters
    ----------
    value : float
        A window whose score is strictly greater than ``value`` is anomalous.
    policy : str
        How the value was chosen (see :data:`POLICIES`, or ``best_f1`` / ``fixed``).
    params : dict
        The policy's parameters and the statistics it was computed from.
    """

    value: float
    policy: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not np.isfinite(self.value):
            raise DetectorConfigError(f"threshold.value: {self.value!r} must be finite")

    def classify(self, scores: np.ndarray) -> np.ndarray:
        """Return a boolean array: ``True`` where a window is anomalous (score > value)."""
        return np.asarray(scores) > self.value

    def severity(self, scores: np.ndarray) -> np.ndarray:
        """Return ``score / value``: 1.0 at the threshold, 2.0 at twice it."""
        return np.asarray(scores, dtype=np.float64) / self.value

    def to_dict(self) -> dict[str, Any]:
        """Serialisable form stored in ``detector.json``."""
        return {"value": float(self.value), "policy": self.policy, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Threshold:
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["value"]), str(data["policy"]), dict(data.get("params", {})))


def fit_threshold(policy: str, normal_scores: np.ndarray, **params: Any) -> Threshold:
    """Choose a threshold from reconstruction errors of normal beats.

    Parameters
    ----------
    policy : {"mean_std", "quantile"}
        ``mean_std`` takes ``k`` (default 1.0); ``quantile`` takes ``q`` in (0, 1)
        (default 0.99).
    normal_scores : ndarray
        Scores of normal beats (training beats for ``mean_std``, held-out ones for
        ``quantile``).

    Returns
    -------
    Threshold
    """
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    if scores.size == 0 or not np.isfinite(scores).all():
        raise DetectorConfigError(
            f"normal_scores: need a non-empty finite array, got {scores.size} values"
        )
    if policy == "mean_std":
        k = float(params.pop("k", 1.0))
        _no_extra(policy, params)
        # float32 arithmetic, as the seed computes np.mean/np.std of a float32 tensor.
        s32 = scores.astype(np.float32)
        mean, std = float(np.mean(s32)), float(np.std(s32))
        return Threshold(
            mean + k * std, policy, {"k": k, "mean": mean, "std": std, "n": int(scores.size)}
        )
    if policy == "quantile":
        q = float(params.pop("q", 0.99))
        _no_extra(policy, params)
        if not 0.0 < q < 1.0:
            raise DetectorConfigError(
                f"threshold.q: {q} is outside (0, 1); use e.g. 0.99 for a 1% false-alarm rate"
            )
        return Threshold(float(np.quantile(scores, q)), policy, {"q": q, "n": int(scores.size)})
    raise DetectorConfigError(
        f"threshold.policy: {policy!r} is not a label-free policy; choose one of {POLICIES}"
    )


def fit_best_f1_threshold(scores: np.ndarray, normal: np.ndarray) -> Threshold:
    """The threshold maximising anomaly F1 on *labelled validation* beats.

    Not label-free: it needs labels, so it is kept out of :data:`POLICIES`, reported apart,
    and must only ever see validation beats (never the test split it is evaluated on).

    Parameters
    ----------
    scores : ndarray, shape (n,)
        Scores of validation beats.
    normal : ndarray, shape (n,)
        1 for a normal beat, 0 for an abnormal one; both classes must be present.

    Returns
    -------
    Threshold
        Policy ``best_f1``; the value lies halfway between two adjacent validation scores.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(normal).astype(int).ravel()
    if s.size == 0 or s.shape != y.shape or not np.isfinite(s).all():
        raise DetectorConfigError(
            f"scores/normal: need equal-length finite arrays, got {s.shape} and {y.shape}"
        )
    if len(np.unique(y)) != 2:
        raise DetectorConfigError(
            "normal: best_f1 needs normal and abnormal validation beats; got one class only"
        )
    order = np.argsort(s)
    s_sorted, anomalous = s[order], (1 - y[order])
    n_anom = anomalous.sum()
    # Threshold between s_sorted[i] and s_sorted[i+1]: beats i+1.. are flagged anomalous.
    tp = n_anom - np.cumsum(anomalous)  # anomalies strictly above position i
    flagged = len(s) - np.arange(1, len(s) + 1)
    f1 = 2 * tp / np.maximum(flagged + n_anom, 1)
    i = int(np.argmax(f1[:-1])) if len(s) > 1 else 0
    value = float((s_sorted[i] + s_sorted[min(i + 1, len(s) - 1)]) / 2)
    return Threshold(
        value,
        "best_f1",
        {"validation_f1": float(f1[i]), "n": int(s.size), "n_abnormal": int(n_anom)},
    )


def _no_extra(policy: str, params: dict[str, Any]) -> None:
    if params:
        raise DetectorConfigError(
            f"threshold.{next(iter(params))}: not a parameter of policy {policy!r}"
        )
