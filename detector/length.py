"""Beat-length search: score a window as if its beat had been cut a few per cent longer or
shorter, and keep the length the model finds far more normal (pure NumPy).

A producer that misjudges a beat's length by 5-10 % (the next R found early or late) hands
over a window stretched or squeezed against the beats the model learnt: almost every normal
beat then scores as an anomaly, and no template correlation finds the length reliably
(``docs/model-quality.md``). The search asks the model itself: each hypothesis undoes one
length error, is aligned by the detector's shift search and reconstructed; where the window
covered less than the whole beat, the part it never held is left out of the score.

The hypothesis is taken only when it scores ``gain`` times better than the window as cut: a
normal beat cut to the wrong length drops from far above the threshold to its usual score,
while an abnormal beat, which no length makes normal, keeps its own. The search only runs for
windows scoring above ``floor`` (a high quantile of the fitted normal beats' scores, set when
the detector is fitted), so a feed of well-cut beats costs little more than before; below it
no decision could change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.align import warp_matrix
from detector.errors import DetectorConfigError
from detector.normalise import WindowNormaliser, zscore_rows
from detector.scoring import discount, smoothing_matrix

__all__ = [
    "FLOOR_QUANTILE",
    "LengthSearch",
    "NoiseDiscount",
    "searched_scores",
]

#: Quantile of the fitted normal beats' scores above which a window's length is searched.
FLOOR_QUANTILE = 0.9


@dataclass(frozen=True)
class LengthSearch:
    """The bounded length search and its decision rule.

    Parameters
    ----------
    max_error : float
        Largest length error undone, as a fraction of the beat (0.1: the producer judged the
        beat up to 10 % too long or too short).
    steps : int
        Lengths tried from ``1 - max_error`` to ``1 + max_error`` (odd; the window as cut is
        the middle one).
    gain : float
        A hypothesis replaces the window's score only when it is this many times lower.
    floor : float, optional
        Windows scoring at or below it are not searched; set by fitting the detector.
    """

    max_error: float = 0.1
    steps: int = 9
    gain: float = 1.5
    floor: float | None = None

    def __post_init__(self) -> None:
        if not 0 < float(self.max_error) <= 0.3:
            raise DetectorConfigError(
                f"length_search.max_error: {self.max_error!r} must be a fraction of the beat "
                "from above 0 to 0.3 (0.1: lengths misjudged by up to 10 %)"
            )
        steps = self.steps
        if not isinstance(steps, int) or isinstance(steps, bool) or not 3 <= steps <= 41:
            raise DetectorConfigError(
                f"length_search.steps: {steps!r} must be an odd integer from 3 to 41"
            )
        if steps % 2 == 0:
            raise DetectorConfigError(
                f"length_search.steps: {steps!r} must be odd, so the window as cut is one of them"
            )
        if not 1 <= float(self.gain) <= 10:
            raise DetectorConfigError(
                f"length_search.gain: {self.gain!r} must be a number from 1 to 10 (how many "
                "times lower a hypothesis must score to be taken)"
            )
        if self.floor is not None and not np.isfinite(self.floor):
            raise DetectorConfigError(f"length_search.floor: {self.floor!r} must be finite")

    def lengths(self) -> np.ndarray:
        """The beat lengths tried, as fractions of the window (the window itself left out)."""
        grid = np.linspace(1 - self.max_error, 1 + self.max_error, self.steps)
        return grid[np.abs(grid - 1) > 1e-9]

    def unfitted(self) -> LengthSearch:
        """This search without its floor (to be fitted again)."""
        return LengthSearch(self.max_error, self.steps, self.gain)

    def with_floor(self, floor: float) -> LengthSearch:
        """This search with its ``floor`` set."""
        return LengthSearch(self.max_error, self.steps, self.gain, float(floor))

    def to_dict(self) -> dict[str, Any]:
        """As stored in ``detector.json`` (``model.length_search``)."""
        return {
            "max_error": float(self.max_error),
            "steps": int(self.steps),
            "gain": float(self.gain),
            "floor": None if self.floor is None else float(self.floor),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LengthSearch:
        """Rebuild from :meth:`to_dict` output; a stored search must carry its floor."""
        floor = data.get("floor")
        if floor is None:
            raise DetectorConfigError(
                "length_search.floor: missing; an artifact's length search needs the floor "
                "its fit set (re-save the artifact from a fitted detector)"
            )
        return cls(float(data["max_error"]), int(data["steps"]), float(data["gain"]), float(floor))

    def candidates(
        self,
        z: np.ndarray,
        template: np.ndarray,
        align: Callable[[np.ndarray], np.ndarray],
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each length hypothesis of the z-normalised windows ``z``.

        Parameters
        ----------
        z : ndarray, shape (n, m)
            Windows, each z-normalised, not aligned.
        template : ndarray, shape (m,)
            The mean normal beat (z-normalised): it stands in for the part of a beat that a
            window cut too short never held, so the model sees a whole beat.
        align : callable
            ``z -> integer shift per row`` (the detector's shift search).

        Yields
        ------
        (ndarray, ndarray)
            The hypothesis (z-normalised, aligned) and, per sample, 1 where it holds the
            window's own signal and 0 where it holds the template.
        """
        m = z.shape[1]
        cols = np.arange(m)
        for length in self.lengths():
            # Undo a window that covered `length` x the beat: read it at 1 / length.
            c = z @ warp_matrix(m, float(1.0 / length))
            held = m if length >= 1 else int(np.floor(m * length))
            if held < m:
                # Past `held` the reading wrapped round to the window's start: put the
                # template there, continuous with the window's last real sample.
                c[:, held:] = template[None, held:] + (c[:, held - 1 : held] - template[held - 1])
            c = zscore_rows(c)
            shift = align(c).astype(np.int64)
            pos = (shift[:, None] + cols[None, :]) % m
            c = zscore_rows(np.take_along_axis(c, pos, axis=1))
            yield c, (pos < held).astype(np.float32)


def searched_scores(
    x: np.ndarray,
    scores: np.ndarray,
    search: LengthSearch,
    normaliser: WindowNormaliser,
    forward: Callable[[np.ndarray], np.ndarray],
    noise: NoiseDiscount,
) -> np.ndarray:
    """``scores`` of the windows ``x`` with the length search applied (a new array).

    Parameters
    ----------
    x : ndarray, shape (n, m)
        The raw windows (validated, none flat).
    scores : ndarray, shape (n,)
        Their scores as cut (:func:`detector.scoring.residual_score`).
    search : LengthSearch
        With its ``floor`` set.
    normaliser : WindowNormaliser
        The detector's, with its aligner (template and shift search).
    forward : callable
        Normalised windows -> reconstructions.
    noise : NoiseDiscount
        The detector's residual smoothing and noise discount, applied as to ``scores``.
    """
    aligner = normaliser.aligner
    if search.floor is None or aligner is None or aligner.template is None:
        raise DetectorConfigError(
            "length_search: needs a fitted floor and an aligned zscore_window normaliser "
            "(fit the detector or load its artifact)"
        )
    rows = np.flatnonzero(scores > search.floor)
    out = np.array(scores, dtype=np.float32, copy=True)
    if len(rows) == 0:
        return out
    z = zscore_rows(np.asarray(x)[rows])
    g = noise.matrix(z.shape[1])
    best = np.full(len(rows), np.inf, dtype=np.float32)
    for c, held in search.candidates(z, aligner.template, lambda c: aligner.best(c)[0]):
        cz = normaliser.scale(c)
        n_held = held.sum(axis=1)
        error = (np.abs((forward(cz) - cz) @ g) * held).sum(axis=1) / n_held
        high = (np.abs(cz - cz @ g) * held).sum(axis=1) / n_held
        best = np.minimum(best, noise.discounted(error, high))
    own = out[rows]
    out[rows] = np.where(own >= search.gain * best, best, own)
    return out


@dataclass(frozen=True)
class NoiseDiscount:
    """A detector's residual smoothing and noise discount (see :mod:`detector.scoring`)."""

    sigma: float
    weight: float = 0.0
    reference: float | None = None

    def matrix(self, m: int) -> np.ndarray:
        """The smoothing as a matrix (the identity without smoothing)."""
        return smoothing_matrix(m, float(self.sigma))

    def discounted(self, error: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """``error / (1 + weight * noise / reference)``; ``error`` without a discount."""
        if self.weight <= 0 or not self.reference:
            return np.asarray(error, dtype=np.float32)
        return np.asarray(discount(error, noise, self.weight, self.reference), dtype=np.float32)
