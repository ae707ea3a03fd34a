"""The model's checks on how a window was cut: the alignment gate (:mod:`detector.gate`) and
the length search (:mod:`detector.length`), applied where a detector scores a batch, and
their levels fitted on the normal beats the detector was fitted on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from detector.gate import GATE_FLOOR_QUANTILE, AlignmentGate
from detector.length import FLOOR_QUANTILE, LengthSearch, NoiseDiscount, searched_scores
from detector.normalise import Normaliser, WindowNormaliser
from detector.scoring import residual_score

__all__ = ["Checked", "fit_levels", "scores_of"]

Forward = Callable[[np.ndarray], np.ndarray]


class Checked(Protocol):
    """What the checks read of a detector (``AutoencoderDetector`` has it all)."""

    normaliser: Normaliser
    align_gate: AlignmentGate | None
    length_search: LengthSearch | None
    score_smoothing: float
    noise_discount: float
    noise_reference: float | None


def _residual(det: Checked, z: np.ndarray, forward: Forward) -> np.ndarray:
    return residual_score(
        z, forward(z), det.score_smoothing, det.noise_discount, det.noise_reference
    )


def scores_of(det: Checked, x: np.ndarray, forward: Forward) -> np.ndarray:
    """Scores of the validated, non-flat raw windows ``x`` (one batch) as ``det`` scores.

    Parameters
    ----------
    det : Checked
        Whose normaliser, scoring options and checks apply.
    x : ndarray, shape (n, window_length)
    forward : callable
        Normalised windows -> reconstructions.
    """
    nm, gate = det.normaliser, det.align_gate
    if gate is not None and isinstance(nm, WindowNormaliser):
        # Scored as cut first (transform_for_fit: z-normalised and scaled, not aligned); the
        # aligned window only where the gate may take it.
        scores = _residual(det, nm.transform_for_fit(x), forward)
        rows = np.flatnonzero(gate.searched(scores))
        if len(rows):
            aligned = _residual(det, nm.transform(x[rows]), forward)
            scores[rows] = gate.choose(scores[rows], aligned)
    else:
        scores = _residual(det, nm.transform(x), forward)
    if det.length_search is not None and isinstance(nm, WindowNormaliser):
        noise = NoiseDiscount(det.score_smoothing, det.noise_discount, det.noise_reference)
        scores = searched_scores(x, scores, det.length_search, nm, forward, noise)
    return np.asarray(scores, dtype=np.float32)


def fit_levels(det: Checked, x_fit: np.ndarray, forward: Forward) -> None:
    """Set the levels of ``det``'s gate and length search from its fitted normal beats.

    The gate's ``floor`` is the :data:`GATE_FLOOR_QUANTILE` of their scores as cut, its
    ``accept`` their aligned scores' ``accept_quantile``; then the search's floor is the
    :data:`FLOOR_QUANTILE` of their scores with the gate.
    """
    gate, search = det.align_gate, det.length_search
    det.align_gate = det.length_search = None
    try:
        if gate is not None and isinstance(det.normaliser, WindowNormaliser):
            as_cut = _residual(det, det.normaliser.transform_for_fit(x_fit), forward)
            aligned = _residual(det, det.normaliser.transform(x_fit), forward)
            gate = gate.with_levels(
                float(np.quantile(as_cut, GATE_FLOOR_QUANTILE)),
                float(np.quantile(aligned, gate.accept_quantile)),
            )
        det.align_gate = gate
        if search is not None:
            gated = scores_of(det, x_fit, forward)
            search = search.with_floor(float(np.quantile(gated, FLOOR_QUANTILE)))
    finally:
        det.align_gate, det.length_search = gate, search
