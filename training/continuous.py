"""A continuous ECG signal stitched from ECG5000 beats, with its ground truth.

ECG5000's beats were cut from a 250 Hz recording and interpolated to 140 samples each.
:func:`stitch` undoes that for test data: each beat is resampled to its own length (an RR
interval that drifts slowly, swings with breathing and jitters from beat to beat) and the beats
are laid end to end — overlapping where a window ran into the next beat's R wave, as most of
ECG5000's abnormal windows do (:func:`_next_r`). A few normal beats lead in and out (label
:data:`PAD_LABEL`) so that the first and last real beats have neighbours to be cut between.
The same stitched signal feeds ``ecgwatch replay --continuous`` and the WFDB records of the
training path (:mod:`training.records`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detector.beats import DEFAULT_RECIPE
from training.errors import DataError

__all__ = ["ANNOTATION_SYMBOLS", "PAD_LABEL", "STITCH_FS", "Stitched", "stitch"]

#: Label of the lead-in/lead-out beats (not part of the ground truth).
PAD_LABEL = -1

#: Sampling rates a stitched signal may have, Hz (each beat is whole samples long).
STITCH_FS = (50.0, 2000.0)

#: MIT-BIH beat symbols of ECG5000's classes (1 normal, 2 R-on-T PVC, 3 PVC, 4 supraventricular
#: premature, 5 unclassified) and of the pads, for WFDB annotations.
ANNOTATION_SYMBOLS = {1: "N", 2: "r", 3: "V", 4: "S", 5: "Q", PAD_LABEL: "N"}


@dataclass(frozen=True)
class Stitched:
    """A stitched signal and where each beat lies in it.

    Attributes
    ----------
    signal : ndarray, shape (n,), float32
    fs : float
    starts, lengths : ndarray of int — each beat's first sample and its length in samples
        (a beat whose window ran into the next R overlaps the next beat's start).
    labels : ndarray of int — the class given for each beat, :data:`PAD_LABEL` for the pads.
    rows : ndarray of int — each beat's index in the input, -1 for the pads.
    """

    signal: np.ndarray
    fs: float
    starts: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    rows: np.ndarray

    @property
    def peaks(self) -> np.ndarray:
        """Each beat's R position (where the beat recipe expects it): the annotation sample."""
        offset = np.round(DEFAULT_RECIPE.pre_fraction * self.lengths).astype(np.int64)
        return self.starts + offset

    @property
    def ends(self) -> np.ndarray:
        """Where each beat ends in the signal: the next beat's start, or its own window's end
        when nothing follows (a window that ran into the next R is overlapped there)."""
        own = self.starts + self.lengths
        return np.minimum(own, np.append(self.starts[1:], own[-1]))

    @property
    def counted(self) -> np.ndarray:
        """Which beats are ground truth (not lead-in/lead-out)."""
        return self.labels != PAD_LABEL


def _rr_intervals(n: int, rng: np.random.Generator, mean_s: float) -> np.ndarray:
    """Slow drift + breathing swing + beat-to-beat jitter, kept physiological."""
    i = np.arange(n)
    drift = 0.06 * np.sin(2 * np.pi * i / max(n, 200) + rng.uniform(0, 2 * np.pi))
    breathing = 0.05 * np.sin(2 * np.pi * i / 4.5 + rng.uniform(0, 2 * np.pi))
    jitter = 0.025 * rng.standard_normal(n)
    return np.clip(mean_s + drift + breathing + jitter, 0.45, 1.5)


#: A beat's window "runs into the next R" when its last :data:`_TAIL` of samples dip at
#: least this deep (from the window's median, as a fraction of its deepest point's depth).
_TAIL_DEPTH = 0.7
_TAIL = 0.1


def _next_r(beat: np.ndarray, following: np.ndarray) -> float:
    """Where, in ``beat``'s own samples, the following beat starts.

    Most ECG5000 windows end just before the next R wave, and the next window starts just
    before it: end to end. Most *abnormal* windows (86 %) run on into the next beat's R: their
    lowest sample is among their last 7 of 140. Placed end to end they would leave two R waves
    a few samples apart; here the following beat starts so that its own R lands on that dip,
    as it did in the recording the windows were cut from.
    """
    m = beat.size
    tail = max(2, round(_TAIL * m))
    at = int(np.argmin(beat[m - tail :])) + m - tail
    level = np.median(beat)
    deepest = level - beat.min()
    if deepest <= 0 or level - beat[at] < _TAIL_DEPTH * deepest:
        return float(m)
    r_following = int(np.argmin(following[:tail]))
    return float(max(at - r_following, m // 2))


def _assemble(beats: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each beat resampled to its length (a cubic spline through its samples: ECG5000's beats
    were interpolated from a 250 Hz recording, and a spline undoes that more faithfully than
    straight lines) and laid down from its start; a later beat overwrites the tail of one
    that runs into it (:func:`_next_r`). Returns the starts and the signal."""
    from scipy.interpolate import CubicSpline

    n, m = beats.shape
    starts = np.zeros(n, dtype=np.int64)
    for k in range(1, n):
        advance = _next_r(beats[k - 1], beats[k]) * lengths[k - 1] / m
        starts[k] = starts[k - 1] + round(advance)
    signal = np.zeros(int(starts[-1] + lengths[-1]), dtype=np.float64)
    grid = np.arange(m)
    for beat, start, length in zip(beats, starts, lengths, strict=True):
        signal[start : start + length] = CubicSpline(grid, beat)(np.arange(length) * (m / length))
    return starts, signal.astype(np.float32)


def stitch(
    beats: np.ndarray,
    labels: np.ndarray,
    *,
    fs: float = 250.0,
    seed: int = 0,
    rr_mean_s: float = 0.8,
    pad: int = 3,
) -> Stitched:
    """Stitch beats into one continuous signal.

    Parameters
    ----------
    beats : ndarray, shape (n, m)
        Beats in any units (ECG5000's are z-normalised).
    labels : ndarray, shape (n,)
        Class of each beat (ECG5000's 1–5; 1 = normal).
    fs : float, default 250
        Sampling rate of the signal, Hz.
    seed : int
        Seeds the RR intervals.
    rr_mean_s : float, default 0.8
        Mean RR interval in seconds (75 beats per minute).
    pad : int, default 3
        Normal beats before and after the given ones (copies of the first normal beat).

    Returns
    -------
    Stitched
    """
    x = np.asarray(beats, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise DataError(
            f"beats: got shape {x.shape} with {y.shape[0]} labels; need (n, m), n >= 1 labels"
        )
    if not math.isfinite(fs) or not STITCH_FS[0] <= fs <= STITCH_FS[1]:
        raise DataError(
            f"fs: got {fs!r} Hz; stitched signals are written at {STITCH_FS[0]:g}.."
            f"{STITCH_FS[1]:g} Hz"
        )
    if not 0.3 <= rr_mean_s <= 2.0:
        raise DataError(f"rr_mean_s: got {rr_mean_s!r} s; use 0.3..2 s (30-200 beats a minute)")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed: got {seed!r}; use an integer >= 0")
    normal = np.flatnonzero(y == 1)
    pad_beat = x[normal[0]] if normal.size else x[0]
    lead = np.repeat(pad_beat[None], pad, 0)
    all_beats = np.concatenate([lead, x, lead])
    all_labels = np.concatenate([np.full(pad, PAD_LABEL), y, np.full(pad, PAD_LABEL)])
    rows = np.concatenate([np.full(pad, -1), np.arange(len(x)), np.full(pad, -1)])
    rng = np.random.default_rng(seed)
    lengths = np.round(_rr_intervals(len(all_beats), rng, rr_mean_s) * fs).astype(np.int64)
    starts, signal = _assemble(all_beats, lengths)
    return Stitched(
        signal=signal,
        fs=float(fs),
        starts=starts,
        lengths=lengths,
        labels=all_labels,
        rows=rows,
    )
