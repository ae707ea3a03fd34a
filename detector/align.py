"""Shift and stretch of windows, and their alignment to a template beat (pure NumPy).

A window is treated as one period of a beat-to-beat signal: sampling past its end wraps to its
start. Beats cut from a continuous ECG at consecutive fiducial points follow each other, so the
samples a later cut takes from the *next* beat look like the start of this one; that is the
assumption both the robustness perturbations (``training.robustness``) and the alignment make.

:func:`warp` resamples rows at ``shift + scale * i``. :class:`Aligner` searches a bounded grid
of ``(shift, scale)`` for the warp whose result correlates best with a template (the mean
normal beat); correlations of every candidate are one matrix product, because
``<warp_c(w), t> = <w, W_c^T t>`` with ``W_c`` the (linear) interpolation matrix of candidate
``c``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError

__all__ = ["Aligner", "AlignmentGrid", "warp", "warp_matrix"]


def warp(x: np.ndarray, shift: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray:
    """Resample each row of ``x`` at positions ``shift + scale * i`` (periodic, linear).

    Parameters
    ----------
    x : ndarray, shape (n, m)
        Windows.
    shift : float or ndarray, shape (n,)
        Start position, in samples, of each output row in its input row.
    scale : float or ndarray, shape (n,)
        Input samples per output sample (> 1 takes in more of the signal: a window judged too
        short is stretched back; < 1 takes in less).

    Returns
    -------
    ndarray, shape (n, m), float32
    """
    arr = np.asarray(x, dtype=np.float32)
    n, m = arr.shape
    sh = np.broadcast_to(np.asarray(shift, dtype=np.float64), (n,))
    sc = np.broadcast_to(np.asarray(scale, dtype=np.float64), (n,))
    i0, i1, frac = _neighbours(sh[:, None], sc[:, None], m)
    a = np.take_along_axis(arr, i0, axis=1)
    b = np.take_along_axis(arr, i1, axis=1)
    return a + frac.astype(np.float32) * (b - a)


@lru_cache(maxsize=16)
def warp_matrix(m: int, scale: float) -> np.ndarray:
    """``W`` with ``x @ W == warp(x, 0, scale)`` for rows of length ``m`` (float32, read-only).

    One BLAS product warps a whole batch by the same scale (the length search,
    :mod:`detector.length`, warps every window by each of its lengths).
    """
    i0, i1, frac = _neighbours(0.0, scale, m)
    w = np.zeros((m, m), dtype=np.float32)
    cols = np.arange(m)
    np.add.at(w, (i0, cols), (1 - frac).astype(np.float32))
    np.add.at(w, (i1, cols), frac.astype(np.float32))
    w.setflags(write=False)
    return w


def _neighbours(
    shift: np.ndarray | float, scale: np.ndarray | float, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For positions ``shift + scale * i`` (i < m): the two samples around each (periodic)
    and the weight of the second."""
    pos = shift + scale * np.arange(m, dtype=np.float64)
    base = np.floor(pos)
    i0 = base.astype(np.int64) % m
    return i0, (i0 + 1) % m, pos - base


@dataclass(frozen=True)
class AlignmentGrid:
    """The bounded search: integer shifts in ``[-max_shift, max_shift]`` × scales.

    Parameters
    ----------
    max_shift : int
        Largest shift tried, in samples (0: no shift search).
    max_stretch : float
        Scales tried run from ``1 - max_stretch`` to ``1 + max_stretch`` (0: no stretch
        search).
    scale_steps : int
        Number of scales tried (odd, so that 1 is one of them).
    margin : float
        A window is moved only when the best candidate's correlation with the template beats
        the window as cut by more than this (in Pearson-correlation units, 0–1): a beat cut
        as the model expects stays as it is, so alignment cannot pull an abnormal beat
        towards the normal template by a sample or two.
    """

    max_shift: int = 6
    max_stretch: float = 0.12
    scale_steps: int = 13
    margin: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_shift, int) or not 0 <= self.max_shift <= 20:
            raise DetectorConfigError(
                f"align.max_shift: {self.max_shift!r} must be an integer from 0 to 20 samples"
            )
        if not 0 <= float(self.max_stretch) <= 0.3:
            raise DetectorConfigError(
                f"align.max_stretch: {self.max_stretch!r} must be a number from 0 to 0.3"
            )
        if not 0 <= float(self.margin) <= 1:
            raise DetectorConfigError(
                f"align.margin: {self.margin!r} must be a number from 0 to 1 (a correlation)"
            )
        steps = self.scale_steps
        if not isinstance(steps, int) or steps < 1 or steps % 2 == 0 or steps > 41:
            raise DetectorConfigError(
                f"align.scale_steps: {steps!r} must be an odd integer from 1 to 41"
            )

    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """Every ``(shift, scale)`` pair as two flat arrays; ``(0, 1)`` is first."""
        shifts = np.arange(-self.max_shift, self.max_shift + 1, dtype=np.float64)
        steps = self.scale_steps if self.max_stretch > 0 else 1
        scales = np.linspace(1 - self.max_stretch, 1 + self.max_stretch, steps)
        sh, sc = (a.ravel() for a in np.meshgrid(shifts, scales, indexing="ij"))
        order = np.argsort((sh != 0) | (np.abs(sc - 1) > 1e-12), kind="stable")
        return sh[order], sc[order]

    def to_dict(self) -> dict[str, Any]:
        """As stored in ``detector.json``."""
        return {
            "max_shift": int(self.max_shift),
            "max_stretch": float(self.max_stretch),
            "scale_steps": int(self.scale_steps),
            "margin": float(self.margin),
        }


@dataclass
class Aligner:
    """Warp each window to the candidate of :class:`AlignmentGrid` that best matches a template.

    Parameters
    ----------
    grid : AlignmentGrid
        The bounded search.
    template : ndarray, shape (m,), optional
        The reference beat (z-normalised); set by :meth:`fit`.
    """

    grid: AlignmentGrid = field(default_factory=AlignmentGrid)
    template: np.ndarray | None = None
    _projections: np.ndarray | None = field(default=None, repr=False)
    _shifts: np.ndarray | None = field(default=None, repr=False)
    _scales: np.ndarray | None = field(default=None, repr=False)

    def fit(self, z: np.ndarray) -> Aligner:
        """Template = the mean of the (z-normalised) normal beats ``z``. Returns ``self``.

        The template is not re-estimated from aligned beats: that lets it drift to a
        stretched beat, which the next round then prefers.
        """
        self.set_template(np.asarray(z, dtype=np.float32).mean(axis=0))
        return self

    def set_template(self, template: np.ndarray) -> None:
        """Use ``template`` and precompute the candidate projections ``W_c^T t``."""
        t = np.asarray(template, dtype=np.float32)
        m = t.shape[0]
        t = (t - t.mean()) / max(float(t.std()), 1e-12)
        shifts, scales = self.grid.candidates()
        # <warp_c(w), t> = sum_j t[j] * interp(w, pos_j) = w @ p_c, where p_c spreads each
        # t[j] onto the two input samples that position j interpolates between.
        proj = np.zeros((len(shifts), m), dtype=np.float64)
        for k, (sh, sc) in enumerate(zip(shifts, scales, strict=True)):
            i0, i1, frac = _neighbours(sh, sc, m)
            np.add.at(proj[k], i0, t * (1 - frac))
            np.add.at(proj[k], i1, t * frac)
        self.template = t
        self._projections = np.ascontiguousarray(proj.T, dtype=np.float32)
        self._shifts, self._scales = shifts, scales

    def best(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chosen ``(shift, scale)`` of each row of ``z``."""
        if self._projections is None or self._shifts is None or self._scales is None:
            raise DetectorConfigError("Aligner: no template; call fit() or load an artifact")
        arr = np.asarray(z, dtype=np.float32)
        corr = arr @ self._projections
        k = np.argmax(corr, axis=1)
        if self.grid.margin > 0:
            # Column 0 is the identity (see AlignmentGrid.candidates); correlations are sums
            # over the window of two unit-variance signals, so m x Pearson.
            gain = corr[np.arange(len(k)), k] - corr[:, 0]
            k = np.where(gain > self.grid.margin * arr.shape[1], k, 0)
        return self._shifts[k], self._scales[k]

    def transform(self, z: np.ndarray) -> np.ndarray:
        """Rows of ``z`` warped to their best candidate (float32)."""
        shift, scale = self.best(z)
        return warp(z, shift, scale)
