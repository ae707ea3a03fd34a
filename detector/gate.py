"""The model's say on alignment: a window is scored as aligned only when the model agrees.

The template alignment (:mod:`detector.align`) moves a window whenever a shift correlates
better with the mean normal beat. That undoes a window cut a few samples late, but it also
moves most abnormal beats (they correlate poorly with the template as cut), and a moved
abnormal beat scores lower: detection and noise tolerance pay for the shift tolerance
(``docs/model-quality.md``). With the gate, a window is first scored as cut; only when that
score is above ``floor`` is the aligned window scored too, and its score is taken when it is
``gain`` times lower or when it is as low as the fitted normal beats' ``accept_quantile``
(the aligned window then looks like a normal beat). A normal beat cut late passes one of the
two tests; an abnormal beat that alignment only makes a little less abnormal keeps its score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError

__all__ = ["GATE_FLOOR_QUANTILE", "AlignmentGate"]

#: Quantile of the fitted beats' scores (as cut) above which the aligned window is scored.
GATE_FLOOR_QUANTILE = 0.9


@dataclass(frozen=True)
class AlignmentGate:
    """When the aligned window's score replaces the score as cut.

    Parameters
    ----------
    gain : float
        The aligned score is taken when it is this many times lower than the score as cut.
    accept_quantile : float
        ... or when it is at most this quantile of the fitted normal beats' aligned scores.
    floor, accept : float, optional
        The two levels in score units (``GATE_FLOOR_QUANTILE`` of the fitted beats' scores as
        cut, and ``accept_quantile`` of their aligned scores); set by fitting the detector.
    """

    gain: float = 1.5
    accept_quantile: float = 0.99
    floor: float | None = None
    accept: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= float(self.gain) <= 10:
            raise DetectorConfigError(
                f"align.gate.gain: {self.gain!r} must be a number from 1 to 10 (how many "
                "times lower the aligned score must be to be taken)"
            )
        if not 0.5 <= float(self.accept_quantile) < 1:
            raise DetectorConfigError(
                f"align.gate.accept_quantile: {self.accept_quantile!r} must be a number from "
                "0.5 to below 1 (a quantile of the fitted normal beats' scores)"
            )
        for name in ("floor", "accept"):
            value = getattr(self, name)
            if value is not None and not np.isfinite(value):
                raise DetectorConfigError(f"align.gate.{name}: {value!r} must be finite")

    @property
    def fitted(self) -> bool:
        """Whether both levels are set."""
        return self.floor is not None and self.accept is not None

    def with_levels(self, floor: float, accept: float) -> AlignmentGate:
        """This gate with its two levels set."""
        return AlignmentGate(self.gain, self.accept_quantile, float(floor), float(accept))

    def unfitted(self) -> AlignmentGate:
        """This gate without its levels (to be fitted again)."""
        return AlignmentGate(self.gain, self.accept_quantile)

    def searched(self, as_cut: np.ndarray) -> np.ndarray:
        """Which windows have their aligned score computed (score as cut above ``floor``)."""
        if self.floor is None:
            raise DetectorConfigError("align.gate: not fitted (fit the detector first)")
        return np.asarray(as_cut > self.floor)

    def choose(self, as_cut: np.ndarray, aligned: np.ndarray) -> np.ndarray:
        """The score of each window: ``aligned`` where the gate lets it through."""
        if self.accept is None:
            raise DetectorConfigError("align.gate: not fitted (fit the detector first)")
        take = (as_cut >= self.gain * aligned) | (aligned <= self.accept)
        return np.where(take, aligned, as_cut).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """As stored in ``detector.json`` (``model.align_gate``)."""
        return {
            "gain": float(self.gain),
            "accept_quantile": float(self.accept_quantile),
            "floor": None if self.floor is None else float(self.floor),
            "accept": None if self.accept is None else float(self.accept),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignmentGate:
        """Rebuild from :meth:`to_dict` output; a stored gate must carry both levels."""
        floor, accept = data.get("floor"), data.get("accept")
        if floor is None or accept is None:
            raise DetectorConfigError(
                "align_gate: floor and accept are required; an artifact's gate needs the "
                "levels its fit set (re-save the artifact from a fitted detector)"
            )
        return cls(float(data["gain"]), float(data["accept_quantile"]), float(floor), float(accept))
