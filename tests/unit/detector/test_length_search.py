"""The length search (detector.length): a beat whose length the producer misjudged scores as
its well-cut self, and a beat cut right keeps its score (save/load: test_checks.py)."""

from __future__ import annotations

import numpy as np
import pytest

from detector import AutoencoderDetector
from detector.align import warp
from detector.errors import DetectorConfigError
from detector.length import LengthSearch
from detector.normalise import zscore_rows
from training.robustness import Level, perturb


def _misjudged(x: np.ndarray, error: float) -> np.ndarray:
    """Windows of beats whose length was judged ``error`` too long (> 0) or short (< 0)."""
    return perturb(x, Level("length", f"{error:+}", error, scale=1.0 + error))


@pytest.fixture(scope="module")
def fitted(checked: tuple) -> tuple[AutoencoderDetector, dict[str, np.ndarray]]:
    """The shared detector with its length search only (every window aligned, no gate)."""
    det, parts = checked
    return det.with_checks(parts["fit"], None, det.length_search), parts


def test_hypothesis_recovers_the_beat_a_misjudged_window_held(ecg_arrays: tuple) -> None:
    x, y = ecg_arrays
    beats = zscore_rows(x[y == 1][:20])
    search = LengthSearch(max_error=0.1, steps=9)
    for error in (0.05, -0.05):
        window = zscore_rows(warp(beats, 0.0, 1.0 + error))
        found = None
        for length, (cand, held) in zip(
            search.lengths(),
            search.candidates(window, beats.mean(axis=0), lambda c: np.zeros(len(c))),
            strict=True,
        ):
            if np.isclose(length, 1.0 + error):
                found = (cand, held)
        assert found is not None
        cand, held = found
        kept = held[0] > 0
        # Cut short, the window never held the beat's last 5 %: left out of the score.
        assert kept.sum() == (140 if error > 0 else int(np.floor(140 * (1 + error))))
        for c, w, b in zip(cand, window, beats, strict=True):
            undone = np.corrcoef(c[kept], b[kept])[0, 1]
            # Two linear interpolations (the misjudging, then the undoing) cost a little.
            assert undone > 0.98
            assert undone > np.corrcoef(w, b)[0, 1]


def test_misjudged_lengths_stop_raising_false_alarms(fitted: tuple) -> None:
    det, parts = fitted
    plain = det.with_length_search(None, parts["fit"])
    th_search = np.quantile(det.score(parts["hold"]), 0.98)
    th_plain = np.quantile(plain.score(parts["hold"]), 0.98)
    # Errors off the search's grid (0.025 steps), both directions.
    for error in (-0.08, -0.04, 0.06, 0.09):
        bad = _misjudged(parts["hold"], error)
        before = (plain.score(bad) > th_plain).mean()
        after = (det.score(bad) > th_search).mean()
        assert after <= min(0.06, before), error
        if abs(error) > 0.075:  # this small model shrugs off smaller errors by itself
            assert before > 0.3, error
    # Abnormal beats stay abnormal: no length makes them gain x more normal.
    assert (det.score(parts["abnormal"]) > th_search).mean() >= 0.85


def test_windows_at_or_below_the_floor_keep_their_score(fitted: tuple) -> None:
    det, parts = fitted
    plain = det.with_length_search(None, parts["fit"])
    searched, own = det.score(parts["hold"]), plain.score(parts["hold"])
    below = own <= det.length_search.floor
    assert below.mean() > 0.5
    np.testing.assert_array_equal(searched[below], own[below])
    assert (searched <= own).all()
    # The floor is the fitted beats' 0.9 quantile of the unsearched score.
    assert det.length_search.floor == pytest.approx(np.quantile(plain.score(parts["fit"]), 0.9))


def test_a_huge_gain_turns_the_search_off(fitted: tuple) -> None:
    det, parts = fitted
    strict = det.with_length_search(LengthSearch(gain=10.0), parts["fit"])
    plain = det.with_length_search(None, parts["fit"])
    clean = parts["hold"]
    np.testing.assert_allclose(strict.score(clean), plain.score(clean), rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"max_error": 0.0}, "max_error"),
        ({"max_error": 0.5}, "max_error"),
        ({"steps": 8}, "odd"),
        ({"steps": 1}, "steps"),
        ({"gain": 0.5}, "gain"),
    ],
)
def test_bad_settings_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(DetectorConfigError, match=named):
        LengthSearch(**kwargs)


def test_search_without_alignment_is_refused() -> None:
    with pytest.raises(DetectorConfigError, match="align"):
        AutoencoderDetector(normalisation="zscore_window", length_search=LengthSearch())
