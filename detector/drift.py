"""Drift reference: what the scores and the raw inputs looked like on the data a model was
fitted with, and the population stability index (PSI) that compares live data to it.

The reference is stored in ``detector.json`` (``drift_reference``): equal-probability bin
edges (deciles by default) of the score, and of two input statistics per window (the raw
samples' minimum and maximum: they move with an offset, a gain, noise or a different cut, and
they vary from beat to beat even on ECG5000's per-beat z-normalised windows, whose mean and
standard deviation are the same for every beat), computed on the *training split's* beats of
every class, as they came (no labels used). That is the population the model is expected to
see: a monitor whose reference were normal beats only would call every abnormal beat drift.

PSI (``sum((live - ref) * ln(live / ref))`` over the bins) is the usual stability statistic of
credit and ML monitoring; for equal-probability bins it reads the same on any score scale:
below 0.1 no change, 0.1-0.25 a moderate one, above 0.25 a shift worth a look. With ``n``
live samples and ``B`` bins its noise floor is about ``(B - 1) / n`` (0.009 for 1,000 windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError

__all__ = [
    "DRIFT_BINS",
    "INPUT_STATISTICS",
    "DriftReference",
    "bin_index",
    "input_statistics",
    "psi",
]

#: Equal-probability bins of every reference distribution.
DRIFT_BINS = 10
#: Per-window statistics of the raw samples the input drift watches.
INPUT_STATISTICS = ("min", "max")
#: Floor of a bin's share in :func:`psi` (an empty bin would make the logarithm infinite).
_EPS = 1e-4


def input_statistics(windows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-window minimum and maximum of the raw samples, float64."""
    x = np.asarray(windows)
    return {
        "min": x.min(axis=1).astype(np.float64),
        "max": x.max(axis=1).astype(np.float64),
    }


def bin_index(edges: np.ndarray | tuple[float, ...], values: np.ndarray) -> np.ndarray:
    """The bin of each value (``len(edges) + 1`` bins; a value on an edge goes above it)."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")


def _shares(edges: tuple[float, ...], values: np.ndarray) -> tuple[float, ...]:
    counts = np.bincount(bin_index(edges, values), minlength=len(edges) + 1)
    return tuple((counts / counts.sum()).tolist())


def psi(counts: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of live bin ``counts`` against ``expected`` shares."""
    total = float(np.sum(counts))
    if total <= 0:
        return float("nan")
    live = np.maximum(np.asarray(counts, dtype=np.float64) / total, _EPS)
    ref = np.maximum(np.asarray(expected, dtype=np.float64), _EPS)
    return float(np.sum((live - ref) * np.log(live / ref)))


@dataclass(frozen=True)
class DriftReference:
    """Inner bin edges (``bins - 1`` each) of the reference distributions, and the share of
    the reference beats in each bin (equal, unless values repeat so that edges coincide).

    Parameters
    ----------
    score_edges : tuple of float
        Quantile edges of the score.
    input_edges : dict
        ``{statistic: edges}`` for each of :data:`INPUT_STATISTICS`.
    n : int
        Beats the reference was computed on.
    score_shares, input_shares
        Reference share per bin of the score and of each statistic.
    """

    score_edges: tuple[float, ...]
    input_edges: dict[str, tuple[float, ...]]
    n: int
    score_shares: tuple[float, ...]
    input_shares: dict[str, tuple[float, ...]]

    @classmethod
    def fit(cls, scores: np.ndarray, windows: np.ndarray, bins: int = DRIFT_BINS) -> DriftReference:
        """Reference of ``scores`` and the input statistics of ``windows`` (same beats)."""
        scores = np.asarray(scores, dtype=np.float64)
        if len(scores) < bins * 10 or len(scores) != len(windows):
            raise DetectorConfigError(
                f"drift reference: {len(scores)} scores for {len(windows)} windows; needs as "
                f"many of each and at least {bins * 10}"
            )
        qs = np.linspace(0, 1, bins + 1)[1:-1]
        score_edges = tuple(np.quantile(scores, qs).tolist())
        stats = input_statistics(windows)
        input_edges = {k: tuple(np.quantile(v, qs).tolist()) for k, v in stats.items()}
        return cls(
            score_edges,
            input_edges,
            len(scores),
            _shares(score_edges, scores),
            {k: _shares(input_edges[k], v) for k, v in stats.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``drift_reference`` of ``detector.json``."""
        return {
            "bins": len(self.score_edges) + 1,
            "score_edges": list(self.score_edges),
            "score_shares": list(self.score_shares),
            "input_edges": {k: list(v) for k, v in self.input_edges.items()},
            "input_shares": {k: list(v) for k, v in self.input_shares.items()},
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReference:
        """Inverse of :meth:`to_dict` (the schema has checked the types).

        Raises
        ------
        DetectorConfigError
            When edges and shares do not fit together.
        """

        def floats(values: Any) -> tuple[float, ...]:
            return tuple(float(v) for v in values)

        edges = floats(data["score_edges"])
        ref = cls(
            edges,
            {k: floats(data["input_edges"][k]) for k in INPUT_STATISTICS},
            int(data["n"]),
            floats(data["score_shares"]),
            {k: floats(data["input_shares"][k]) for k in INPUT_STATISTICS},
        )
        sizes = {len(edges) + 1, len(ref.score_shares)}
        for k in INPUT_STATISTICS:
            sizes |= {len(ref.input_edges[k]) + 1, len(ref.input_shares[k])}
        if len(sizes) != 1:
            raise DetectorConfigError(
                "drift_reference: every edges list needs one entry fewer than its shares, and "
                f"all as many bins; got bin counts {sorted(sizes)}"
            )
        return ref
