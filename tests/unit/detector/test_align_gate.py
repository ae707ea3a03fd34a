"""The alignment gate (detector.gate): a window cut late is scored aligned, an abnormal beat
that alignment only makes a little less abnormal keeps its score as cut, and the gate's
levels come from the fitted beats (save/load: test_checks.py)."""

from __future__ import annotations

import numpy as np
import pytest

from detector import AutoencoderDetector
from detector.errors import DetectorConfigError
from detector.gate import AlignmentGate
from training.robustness import Level, perturb


def _cut_late(x: np.ndarray, samples: float) -> np.ndarray:
    return perturb(x, Level("shift", f"{samples:+}", samples, shift=samples))


@pytest.fixture(scope="module")
def fitted(checked: tuple) -> tuple[AutoencoderDetector, dict[str, np.ndarray]]:
    """The shared detector with its gate only (no length search)."""
    det, parts = checked
    return det.with_checks(parts["fit"], det.align_gate), parts


def test_choose_takes_the_aligned_score_only_when_the_model_agrees() -> None:
    gate = AlignmentGate(gain=1.5, accept_quantile=0.99).with_levels(floor=1.0, accept=2.0)
    as_cut = np.array([9.0, 9.0, 4.0, 0.5], dtype=np.float32)
    aligned = np.array([7.0, 1.5, 3.0, 0.1], dtype=np.float32)
    # 9 vs 7: not 1.5x lower, above accept -> as cut; 9 vs 1.5: both tests pass; 4 vs 3:
    # neither; the last is below the floor, but choose() only judges, searched() filters.
    np.testing.assert_allclose(gate.choose(as_cut, aligned), [9.0, 1.5, 4.0, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(gate.searched(as_cut), [True, True, True, False])


def test_late_cuts_are_aligned_and_abnormal_beats_mostly_are_not(fitted: tuple) -> None:
    det, parts = fitted
    unaligned = det.without_alignment()
    unaligned.use_backend("numpy")
    ungated = det.with_checks(parts["fit"])  # every window aligned, as before the gate
    th = np.quantile(det.score(parts["hold"]), 0.98)
    for samples in (-5, -3, 4):
        late = _cut_late(parts["hold"], samples)
        assert (det.score(late) > th).mean() <= 0.06, samples
    abnormal = parts["abnormal"]
    kept = np.isclose(det.score(abnormal), unaligned.score(abnormal), rtol=1e-6)
    moved = ~np.isclose(ungated.score(abnormal), unaligned.score(abnormal), rtol=1e-6)
    # The template moves most abnormal beats; the gate lets few of those moves through.
    assert moved.mean() > 0.5
    assert kept.mean() > 0.85


def test_levels_come_from_the_fitted_beats(fitted: tuple) -> None:
    det, parts = fitted
    bare = det.with_checks(parts["fit"])
    as_cut = det.without_alignment()
    assert det.align_gate is not None and det.align_gate.fitted
    assert det.align_gate.floor == pytest.approx(np.quantile(as_cut.score(parts["fit"]), 0.9))
    assert det.align_gate.accept == pytest.approx(np.quantile(bare.score(parts["fit"]), 0.99))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"gain": 0.5}, "gain"), ({"accept_quantile": 1.0}, "accept_quantile")],
)
def test_bad_settings_are_named(kwargs: dict, named: str) -> None:
    with pytest.raises(DetectorConfigError, match=named):
        AlignmentGate(**kwargs)


def test_gate_without_alignment_is_refused() -> None:
    with pytest.raises(DetectorConfigError, match="align_gate: needs"):
        AutoencoderDetector(normalisation="zscore_window", align_gate=AlignmentGate())
