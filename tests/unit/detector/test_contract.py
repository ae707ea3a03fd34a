"""The one detector contract, checked for every registered model kind.

Each kind must fit (tiny: a few hundred beats, two epochs), score with the documented shape
and dtype without side effects, survive a save → load round trip (safe mode) with identical
scores, and give identical scores for the same seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detector import Artifact, AutoencoderDetector, FitOptions, fit_threshold
from detector.models import MODEL_KINDS

N_FIT = 256


def _fit(kind: str, x: np.ndarray, seed: int = 7) -> AutoencoderDetector:
    det = AutoencoderDetector(kind=kind)
    det.fit(x, FitOptions(epochs=2, batch_size=64, seed=seed))
    return det


@pytest.fixture(scope="module")
def beats(ecg_arrays: tuple) -> tuple[np.ndarray, np.ndarray]:
    x, y = ecg_arrays
    return x[y == 1][:N_FIT], x[:200]


@pytest.fixture(scope="module")
def fitted(beats: tuple) -> dict[str, AutoencoderDetector]:
    return {kind: _fit(kind, beats[0]) for kind in MODEL_KINDS}


def test_all_issue_kinds_are_registered() -> None:
    assert {"dense", "conv1d", "lstm", "vae"} <= set(MODEL_KINDS)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_score_shape_dtype_and_no_side_effects(kind: str, fitted: dict, beats: tuple) -> None:
    det, x = fitted[kind], beats[1]
    before = x.copy()
    s1 = det.score(x)
    assert s1.shape == (len(x),) and s1.dtype == np.float32
    assert np.isfinite(s1).all() and (s1 >= 0).all()
    np.testing.assert_array_equal(x, before)  # input untouched
    np.testing.assert_array_equal(det.score(x), s1)  # deterministic, stateless
    # Batch-independent up to float32 rounding: BLAS kernels pick their blocking by batch size,
    # so the last bit of a score may differ between a batch of 1 and one of 200.
    np.testing.assert_allclose(det.score(x[:1]), s1[:1], rtol=1e-6)
    np.testing.assert_allclose(det.score(x[0]), s1[:1], rtol=1e-6)  # one window works too
    assert det.score(x[:0]).shape == (0,)
    assert det.reconstruct(x[:3]).shape == (3, x.shape[1])


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_save_load_round_trip_gives_identical_scores(
    kind: str, fitted: dict, beats: tuple, tmp_path: Path
) -> None:
    det, x = fitted[kind], beats[1]
    thr = fit_threshold("quantile", det.score(beats[0]), q=0.95)
    path = Artifact(det, thr, {"model_version": f"contract-{kind}"}).save(tmp_path / kind)
    loaded = Artifact.load(path)
    assert loaded.detector.kind == kind
    np.testing.assert_array_equal(loaded.score(x), det.score(x))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_same_seed_same_scores(kind: str, fitted: dict, beats: tuple) -> None:
    again = _fit(kind, beats[0])
    np.testing.assert_array_equal(again.score(beats[1]), fitted[kind].score(beats[1]))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_one_compiled_call_per_epoch_trains_exactly_like_one_per_step(
    kind: str, fitted: dict, beats: tuple
) -> None:
    # fit() runs a whole epoch per compiled call by default (the speed-up measured by
    # benchmarks/training.py); the weights must be those of the step-by-step loop.
    det = AutoencoderDetector(kind=kind)
    det.fit(beats[0], FitOptions(epochs=2, batch_size=64, seed=7, steps_per_execution=1))
    np.testing.assert_array_equal(det.score(beats[1]), fitted[kind].score(beats[1]))


def test_steps_per_execution_must_be_positive(beats: tuple) -> None:
    with pytest.raises(ValueError, match="steps_per_execution: got 0"):
        AutoencoderDetector().fit(beats[0], FitOptions(epochs=1, steps_per_execution=0))


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_denoising_option_works_for_every_kind(kind: str, beats: tuple) -> None:
    det = AutoencoderDetector(kind=kind)
    hist = det.fit(beats[0][:128], FitOptions(epochs=1, batch_size=64, noise_factor=0.05, seed=1))
    assert hist.epochs_run == 1 and np.isfinite(hist.loss).all()
    assert np.isfinite(det.score(beats[1][:10])).all()


def test_vae_adds_its_kl_term_and_scores_the_mean_decode(beats: tuple) -> None:
    det = AutoencoderDetector(kind="vae", params={"kl_weight": 1.0})
    det.fit(beats[0][:128], FitOptions(epochs=1, batch_size=128, seed=2))
    z = det.normaliser.transform(beats[1][:8]).astype(np.float32)
    det.model(z, training=True)
    assert len(det.model.losses) == 1 and float(det.model.losses[0]) > 0
    # Inference uses z_mean, never a sample: repeated calls agree exactly.
    np.testing.assert_array_equal(det.reconstruct(beats[1][:8]), det.reconstruct(beats[1][:8]))


def test_unknown_param_names_the_kind() -> None:
    from detector import DetectorConfigError
    from detector.models import build_model

    with pytest.raises(DetectorConfigError, match="conv1d"):
        build_model("conv1d", 140, {"units": 3})
    with pytest.raises(DetectorConfigError, match="kernel_size"):
        build_model("conv1d", 140, {"kernel_size": 0})
