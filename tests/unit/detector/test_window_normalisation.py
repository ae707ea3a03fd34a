"""Per-window z-normalisation, flat-line screening and scoring-time alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detector import (
    Artifact,
    AutoencoderDetector,
    DetectorConfigError,
    FitOptions,
    InvalidWindowError,
    fit_threshold,
)
from detector.align import Aligner, AlignmentGrid, warp
from detector.models import MODEL_KINDS
from detector.normalise import WindowNormaliser, flat_rows, zscore_rows
from detector.validation import FLAT_WINDOW


@pytest.fixture(scope="module")
def beats(ecg_arrays: tuple) -> tuple[np.ndarray, np.ndarray]:
    x, y = ecg_arrays
    return x[y == 1][:256], x[:120]


def test_zscore_is_the_identity_on_ecg5000_and_ignores_units(beats: tuple) -> None:
    x = beats[1]
    # ECG5000's beats are z-normalised one by one, with the sample std (ddof=1): the same
    # up to a factor sqrt(140/139) and the files' rounding.
    np.testing.assert_allclose(zscore_rows(x), x, rtol=5e-3, atol=2e-3)
    np.testing.assert_allclose(zscore_rows(x * 250.0 + 1000.0), zscore_rows(x), atol=1e-4)


def test_flat_rows_in_any_units() -> None:
    x = np.vstack([np.zeros(140), np.full(140, 2048.0), np.full(140, -3e-4), np.arange(140.0)])
    x[1, 5] += 1e-4  # float32 rounding-level wiggle on a large constant is still flat
    assert flat_rows(x).tolist() == [True, True, True, False]
    tiny = np.sin(np.arange(140) / 9) * 1e-6  # a real beat in volts is not flat
    assert not flat_rows(tiny[None, :])[0]


def test_warp_integer_shift_is_a_periodic_roll_and_invertible() -> None:
    x = np.random.default_rng(0).standard_normal((3, 140)).astype(np.float32)
    np.testing.assert_array_equal(warp(x, 3, 1.0), np.roll(x, -3, axis=1))
    np.testing.assert_allclose(warp(warp(x, 3, 1.0), -3, 1.0), x)
    assert warp(x, np.array([0.5, 0, 0]), 1.0)[0, 0] == pytest.approx(
        (x[0, 0] + x[0, 1]) / 2, abs=1e-6
    )


def test_aligner_undoes_a_late_or_early_cut(beats: tuple) -> None:
    fit, x = beats
    al = Aligner(AlignmentGrid(6, 0.0, 1)).fit(zscore_rows(fit))
    for k in (-5, -2, 3, 5):
        shift, _ = al.best(zscore_rows(np.roll(x, -k, axis=1)))
        base, _ = al.best(zscore_rows(x))
        # Periodic cut: the chosen shift moves by exactly k wherever the grid allows it.
        ok = np.abs(base - k) <= 6
        assert np.mean(shift[ok] == base[ok] - k) > 0.99


def test_margin_keeps_a_beat_cut_as_expected_and_moves_a_grossly_shifted_one(
    beats: tuple,
) -> None:
    fit, x = beats
    template = zscore_rows(fit).mean(axis=0)
    eager, calm = Aligner(AlignmentGrid(6, 0.0, 1)), Aligner(AlignmentGrid(6, 0.0, 1, 0.05))
    eager.set_template(template)
    calm.set_template(template)
    z = zscore_rows(x)
    assert (eager.best(z)[0] != 0).mean() > 0.2  # without a margin many beats move a little
    assert (calm.best(z)[0] != 0).mean() < (eager.best(z)[0] != 0).mean() / 2
    late = zscore_rows(np.roll(x, -5, axis=1))
    # A 5-sample late cut is still undone (to within the beats' own jitter of a sample).
    assert np.mean(np.abs(calm.best(late)[0] + 5) <= 1) > 0.9
    with pytest.raises(DetectorConfigError, match="align.margin"):
        AlignmentGrid(margin=2.0)


def test_alignment_grid_names_the_bad_setting() -> None:
    with pytest.raises(DetectorConfigError, match="max_shift"):
        AlignmentGrid(max_shift=50)
    with pytest.raises(DetectorConfigError, match="scale_steps"):
        AlignmentGrid(scale_steps=4)
    with pytest.raises(DetectorConfigError, match="zscore_window"):
        AutoencoderDetector(align=AlignmentGrid())
    with pytest.raises(DetectorConfigError, match="normalisation"):
        AutoencoderDetector(normalisation="robust")


def test_flat_training_windows_are_refused(beats: tuple) -> None:
    x = beats[0].copy()
    x[3] = 1.0
    with pytest.raises(DetectorConfigError, match="flat training window"):
        WindowNormaliser().fit(x)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_kind_scores_shape_not_units_and_survives_save_load(
    kind: str, beats: tuple, tmp_path: Path
) -> None:
    fit, x = beats
    det = AutoencoderDetector(kind=kind, normalisation="zscore_window", align=AlignmentGrid(6))
    det.fit(fit, FitOptions(epochs=2, batch_size=64, seed=3))
    s = det.score(x)
    np.testing.assert_allclose(det.score(x * 0.004 - 2.5), s, rtol=1e-3, atol=1e-5)
    # A window cut 2 samples late (the next beat's start enters at the end) scores the same.
    same = np.isclose(det.score(np.roll(x, -2, axis=1)), s, rtol=1e-3, atol=1e-5)
    assert same.mean() > 0.95
    thr = fit_threshold("quantile", det.score(fit), q=0.95)
    path = Artifact(det, thr, {"model_version": f"z-{kind}"}).save(tmp_path / kind)
    loaded = Artifact.load(path)
    assert loaded.metadata["normalisation"]["kind"] == "zscore_window"
    assert len(loaded.metadata["normalisation"]["align"]["template"]) == 140
    np.testing.assert_array_equal(loaded.score(x), s)
    np.testing.assert_array_equal(
        loaded.detector.without_alignment().score(x[:4]), det.without_alignment().score(x[:4])
    )


def test_score_refuses_a_flat_window_naming_it(beats: tuple) -> None:
    det = AutoencoderDetector(normalisation="zscore_window")
    det.fit(beats[0], FitOptions(epochs=1, batch_size=128, seed=1))
    x = beats[1][:5].copy()
    x[2] = 512.0
    assert det.flat(x).tolist() == [False, False, True, False, False]
    with pytest.raises(InvalidWindowError, match=r"windows\[2\]: samples: a flat line") as info:
        det.score(x)
    assert info.value.reason == FLAT_WINDOW
