"""Perturbations of test beats, as a real feed or another producer's pre-processing makes them.

Every family changes a beat the way something outside the model does: the amplifier's
offset and gain, a slowly wandering baseline, noise, a window cut a few samples early or late,
a beat length misjudged. Strengths are in z-normalised ECG5000 units (ECG5000's beats are
z-normalised one by one) or in samples. They are applied to *test* beats only, with a fixed
seed, so every model in a comparison sees the same perturbed beats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detector.align import warp

__all__ = ["FAMILIES", "LEVELS", "Level", "key", "measure", "perturb"]


@dataclass(frozen=True)
class Level:
    """One perturbation at one strength.

    ``shift`` (samples; positive = the window is cut later), ``scale`` (the window covers
    ``scale`` x the beat's length: 0.9 = the beat's length was judged 10 % too short),
    ``gain``, ``offset``, ``wander`` (amplitude of a slow sinusoidal baseline) and
    ``noise`` (sigma of white Gaussian noise).
    """

    family: str
    label: str
    strength: float
    shift: float = 0.0
    scale: float = 1.0
    gain: float = 1.0
    offset: float = 0.0
    wander: float = 0.0
    noise: float = 0.0


def _family(name: str, values: tuple[float, ...], make: Callable[[float], Level]) -> list[Level]:
    return [make(v) for v in values]


#: The report's levels, family by family (the issue's minimum ranges at two or more strengths).
LEVELS: tuple[Level, ...] = (
    Level("none", "clean", 0.0),
    *_family("offset", (-1.0, -0.3, 0.3, 1.0), lambda v: Level("offset", f"{v:+g}", v, offset=v)),
    *_family("gain", (0.5, 0.8, 1.2, 2.0), lambda v: Level("gain", f"x{v:g}", v, gain=v)),
    *_family("wander", (0.25, 0.5), lambda v: Level("wander", f"{v:g}", v, wander=v)),
    *_family("noise", (0.1, 0.2), lambda v: Level("noise", f"sigma {v:g}", v, noise=v)),
    *_family("shift", (-5, -3, 3, 5), lambda v: Level("shift", f"{v:+g} samples", v, shift=v)),
    *_family(
        "length",
        (-0.1, -0.05, 0.05, 0.1),
        lambda v: Level("length", f"{v:+.0%}", v, scale=1.0 + v),
    ),
    Level(
        "combined",
        "offset 0.5, gain 1.3, wander 0.25, noise 0.1, shift +3, length -5 %",
        1.0,
        shift=3.0,
        scale=0.95,
        gain=1.3,
        offset=0.5,
        wander=0.25,
        noise=0.1,
    ),
)

#: Family names in report order.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(level.family for level in LEVELS))

#: Cycles per window of the baseline wander: respiration (~0.15-0.4 Hz) against a beat of
#: about one second.
WANDER_CYCLES = (0.15, 0.4)


def perturb(x: np.ndarray, level: Level, seed: int = 0) -> np.ndarray:
    """Apply ``level`` to every row of ``x`` (a new float32 array; ``x`` is not changed).

    Parameters
    ----------
    x : ndarray, shape (n, m)
        Beats in ECG5000 units.
    level : Level
        What to change.
    seed : int
        Seeds the wander's phase and frequency and the noise (one generator per call).
    """
    out = np.asarray(x, dtype=np.float32)
    n, m = out.shape
    rng = np.random.default_rng(seed)
    if level.shift != 0 or level.scale != 1:
        out = warp(out, level.shift, level.scale)
    out = out * np.float32(level.gain) + np.float32(level.offset)
    if level.wander > 0:
        cycles = rng.uniform(*WANDER_CYCLES, size=(n, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
        t = np.arange(m)[None, :] / m
        out = out + (level.wander * np.sin(2 * np.pi * cycles * t + phase)).astype(np.float32)
    if level.noise > 0:
        out = out + (level.noise * rng.standard_normal((n, m))).astype(np.float32)
    return np.asarray(out, dtype=np.float32)


def measure(
    score: Callable[[np.ndarray], np.ndarray],
    threshold: float,
    x: np.ndarray,
    normal: np.ndarray,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """False alarms, detection, accuracy and ROC-AUC of ``score`` at every level of :data:`LEVELS`.

    Parameters
    ----------
    score : callable
        Windows -> anomaly scores (e.g. ``AutoencoderDetector.score``).
    threshold : float
        Scores above it are alarms.
    x, normal : ndarray
        Test beats and their labels (1 = normal).
    seed : int
        Seeds the perturbations (the same for every model of a comparison).

    Returns
    -------
    dict
        ``"family|label"`` -> ``{"false_alarms", "detection", "accuracy", "roc_auc"}``.
    """
    from sklearn import metrics as skm

    y = np.asarray(normal).astype(bool)
    out = {}
    for level in LEVELS:
        s = np.asarray(score(perturb(x, level, seed)))
        alarm = s > threshold
        out[key(level)] = {
            "false_alarms": float(alarm[y].mean()) if y.any() else float("nan"),
            "detection": float(alarm[~y].mean()) if (~y).any() else float("nan"),
            "accuracy": float((alarm != y).mean()),
            "roc_auc": float(skm.roc_auc_score(~y, s)) if 0 < y.sum() < len(y) else float("nan"),
        }
    return out


def key(level: Level) -> str:
    """The key of ``level`` in :func:`measure`'s result."""
    return f"{level.family}|{level.label}"
