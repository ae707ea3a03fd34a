"""``noise_discount``: the smoothed MAE divided by the beat's relative noise level."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector import Artifact, AutoencoderDetector, DetectorConfigError, FitOptions, fit_threshold
from detector.errors import IncompatibleArtifactError
from detector.scoring import residual_score
from tests.reference import gaussian_smooth
from tests.unit.detector.metadata import rewrite_metadata


def _noise(z: np.ndarray, sigma: float) -> np.ndarray:
    return np.abs(z - gaussian_smooth(z, sigma)).mean(axis=1)


@pytest.fixture(scope="module")
def trained(ecg_arrays: tuple) -> tuple[AutoencoderDetector, np.ndarray, np.ndarray]:
    x, y = ecg_arrays
    det = AutoencoderDetector(score_smoothing=2.0, noise_discount=1.5)
    fitted = x[y == 1][:300]
    det.fit(fitted, FitOptions(epochs=2, batch_size=64, seed=3), normaliser_data=x[:1000])
    return det, fitted, x[:64]


def test_fit_measures_the_reference_on_the_fitted_beats(trained: tuple) -> None:
    det, fitted, _ = trained
    want = np.median(_noise(det.normaliser.transform(fitted).astype(np.float64), 2.0))
    assert det.noise_reference == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("weight", [0.5, 1.5, 4.0])
def test_score_is_the_smoothed_mae_over_one_plus_relative_noise(
    trained: tuple, weight: float
) -> None:
    det, _, x = trained
    det = det.with_scoring(2.0, weight)
    z = det.normaliser.transform(x).astype(np.float64)
    smoothed_mae = np.abs(gaussian_smooth(det.reconstruct(x) - z, 2.0)).mean(axis=1)
    want = smoothed_mae / (1 + weight * _noise(z, 2.0) / det.noise_reference)
    np.testing.assert_allclose(det.score(x), want, rtol=1e-5, atol=1e-7)


def test_a_noisy_beat_is_discounted_and_a_clean_one_is_not() -> None:
    n = np.arange(140)
    clean = 0.5 + 0.3 * np.exp(-0.5 * ((n - 40) / 6.0) ** 2)[None, :]
    noisy = clean + np.where(n % 2 == 0, 0.05, -0.05)[None, :]
    recon = clean + 0.05 * np.exp(-0.5 * ((n - 90) / 10.0) ** 2)[None, :]  # same shape error
    reference = float(np.abs(noisy - gaussian_smooth(noisy, 2.0)).mean())  # noisy = typical
    plain = residual_score(np.r_[clean, noisy], np.r_[recon, recon], 2.0)
    disc = residual_score(np.r_[clean, noisy], np.r_[recon, recon], 2.0, 1.5, reference)
    assert plain[1] == pytest.approx(plain[0], rel=0.1)  # the low-pass removes most noise
    assert disc[0] > 0.9 * plain[0]  # a clean beat keeps (nearly) its score
    assert disc[1] == pytest.approx(plain[1] / 2.5, rel=0.01)  # noise = reference: / (1 + 1.5)
    assert disc[1] < 0.5 * disc[0]


@pytest.mark.parametrize("value", [-0.5, 10.5, math.nan, True, "1"])
def test_invalid_weight_is_refused_by_name(value: Any) -> None:
    with pytest.raises(DetectorConfigError, match=r"noise_discount: .* must be a number"):
        AutoencoderDetector(score_smoothing=2.0, noise_discount=value)


def test_discount_without_smoothing_is_refused() -> None:
    with pytest.raises(DetectorConfigError, match="needs score_smoothing > 0"):
        AutoencoderDetector(noise_discount=1.0)


def test_rescoring_with_another_sigma_is_refused(trained: tuple) -> None:
    # The reference was measured with sigma 2; another sigma would compare unlike noise levels.
    with pytest.raises(DetectorConfigError, match="noise reference does not apply"):
        trained[0].with_scoring(3.0, 1.5)
    assert trained[0].with_scoring(3.0, 0.0).score_smoothing == 3.0


def test_an_unfitted_reference_is_a_clear_error() -> None:
    z = np.full((1, 140), 0.5)
    with pytest.raises(DetectorConfigError, match="noise_reference: None"):
        residual_score(z, z, 2.0, 1.5, None)


def test_artifact_keeps_weight_and_reference(trained: tuple, tmp_path: Path) -> None:
    det, _, x = trained
    thr = fit_threshold("quantile", det.score(x), q=0.9)
    path = Artifact(det, thr, {"model_version": "noise"}).save(tmp_path / "a")
    model = json.loads((path / "detector.json").read_text())["model"]
    assert model["noise_discount"] == 1.5
    assert model["noise_reference"] == det.noise_reference
    loaded = Artifact.load(path)
    np.testing.assert_array_equal(loaded.score(x), det.score(x))
    loaded.detector.use_backend("numpy")  # the worker's fast path scores the same way
    np.testing.assert_allclose(loaded.score(x), det.score(x), rtol=1e-4, atol=1e-6)


def test_artifact_without_the_discount_writes_no_noise_keys(small_artifact: Path) -> None:
    model = json.loads((small_artifact / "detector.json").read_text())["model"]
    assert "noise_discount" not in model and "noise_reference" not in model
    assert Artifact.load(small_artifact).detector.noise_discount == 0.0


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"noise_discount": 1.5}, "noise_reference: None"),  # reference missing
        ({"noise_discount": 1.5, "noise_reference": 0}, "noise_reference"),
        ({"noise_discount": -1, "noise_reference": 0.01}, "noise_discount"),
    ],
)
def test_bad_noise_metadata_is_refused(
    small_artifact: Path, tmp_path: Path, change: dict[str, Any], fragment: str
) -> None:
    path = tmp_path / "bad"
    shutil.copytree(small_artifact, path)
    rewrite_metadata(path, lambda meta: meta["model"].update(change, score_smoothing=2.0))
    with pytest.raises(IncompatibleArtifactError, match=fragment) as info:
        Artifact.load(path)
    assert "detector.json" in str(info.value)
