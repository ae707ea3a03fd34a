"""Perturbations of test beats and the robustness measurement."""

from __future__ import annotations

import numpy as np
import pytest

from training.robustness import FAMILIES, LEVELS, Level, measure, perturb


def _beats() -> np.ndarray:
    t = np.arange(140) / 140
    base = np.sin(2 * np.pi * t) + 2 * np.exp(-(((t - 0.1) / 0.02) ** 2))
    return np.vstack([base, -base, base * 0.5]).astype(np.float32)


def test_report_covers_the_issue_minimum_ranges() -> None:
    assert {"offset", "gain", "wander", "noise", "shift", "length", "combined"} <= set(FAMILIES)
    strongest = {f: max(abs(lv.strength) for lv in LEVELS if lv.family == f) for f in FAMILIES}
    assert strongest["offset"] == 1.0 and strongest["wander"] == 0.5
    assert strongest["noise"] == 0.2 and strongest["shift"] == 5 and strongest["length"] == 0.1
    gains = [lv.gain for lv in LEVELS if lv.family == "gain"]
    assert min(gains) == 0.5 and max(gains) == 2.0
    assert all(sum(lv.family == f for lv in LEVELS) >= 2 for f in FAMILIES[1:-1])


def test_each_family_changes_what_it_says_and_is_seeded() -> None:
    x = _beats()
    np.testing.assert_array_equal(perturb(x, LEVELS[0]), x)
    np.testing.assert_allclose(perturb(x, Level("offset", "", 0.3, offset=0.3)), x + 0.3)
    np.testing.assert_allclose(perturb(x, Level("gain", "", 2, gain=2.0)), 2 * x)
    late = perturb(x, Level("shift", "", 3, shift=3))
    np.testing.assert_allclose(late, np.roll(x, -3, axis=1))  # the next beat's start enters
    short = perturb(x, Level("length", "", -0.1, scale=0.9))
    np.testing.assert_allclose(short[:, 0], x[:, 0])
    noisy = Level("noise", "", 0.2, noise=0.2)
    np.testing.assert_array_equal(perturb(x, noisy, seed=1), perturb(x, noisy, seed=1))
    assert not np.array_equal(perturb(x, noisy, seed=1), perturb(x, noisy, seed=2))
    assert abs(float(np.std(perturb(x, noisy) - x)) - 0.2) < 0.02
    wander = perturb(x, Level("wander", "", 0.5, wander=0.5)) - x
    assert np.abs(wander).max() <= 0.5 + 1e-6
    assert np.abs(np.diff(wander, axis=1)).max() < 0.02  # slow: a fraction of a cycle per beat


def test_measure_reports_every_level_at_the_threshold() -> None:
    x = np.vstack([_beats(), _beats() * 4])
    normal = np.array([1, 1, 1, 0, 0, 0])

    def score(w: np.ndarray) -> np.ndarray:
        return np.abs(w).max(axis=1)  # amplitude: gain moves it, offset moves it

    out = measure(score, 4.0, x, normal)
    assert len(out) == len(LEVELS)
    clean = out["none|clean"]
    assert clean["false_alarms"] == 0.0 and clean["detection"] == 1.0
    assert clean["accuracy"] == 1.0 and clean["roc_auc"] == 1.0
    assert out["gain|x2"]["false_alarms"] == pytest.approx(2 / 3)
