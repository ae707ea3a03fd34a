"""``score_smoothing``: the MAE of a Gaussian low-passed residual, stored with the artifact."""

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
from detector.scoring import smooth
from tests.reference import gaussian_smooth
from tests.unit.detector.metadata import rewrite_metadata


@pytest.fixture(scope="module")
def trained(ecg_arrays: tuple) -> tuple[AutoencoderDetector, np.ndarray]:
    x, y = ecg_arrays
    det = AutoencoderDetector()
    det.fit(x[y == 1][:300], FitOptions(epochs=2, batch_size=64, seed=3), normaliser_data=x[:1000])
    return det, x[:64]


@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.0, 3.5])
def test_score_is_the_mae_of_the_smoothed_residual(trained: tuple, sigma: float) -> None:
    det, x = trained
    det = det.with_scoring(sigma)
    residual = det.reconstruct(x).astype(np.float64) - det.normaliser.transform(x)
    if sigma:
        residual = gaussian_smooth(residual, sigma)
    want = np.abs(residual).mean(axis=1)
    np.testing.assert_allclose(det.score(x), want, rtol=1e-5, atol=1e-7)


def test_smoothing_discounts_noise_but_keeps_shape_error() -> None:
    n = 140
    noise = np.where(np.arange(n) % 2 == 0, 0.1, -0.1)[None, :]  # sample-to-sample noise
    bump = 0.1 * np.exp(-0.5 * ((np.arange(n) - 70) / 10.0) ** 2)[None, :]  # a shape error
    assert np.abs(smooth(noise, 2.0)).mean() < 0.03 * np.abs(noise).mean()  # edges only
    assert np.abs(smooth(bump, 2.0)).mean() == pytest.approx(np.abs(bump).mean(), rel=0.01)


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, 18.0, True, "2"])
def test_invalid_smoothing_is_refused_by_name(value: Any) -> None:
    with pytest.raises(DetectorConfigError, match=r"score_smoothing: .* must be a number from 0"):
        AutoencoderDetector(score_smoothing=value)
    assert issubclass(DetectorConfigError, ValueError)


def test_artifact_keeps_the_smoothing(trained: tuple, tmp_path: Path) -> None:
    det, x = trained[0].with_scoring(2.0), trained[1]
    thr = fit_threshold("quantile", det.score(x), q=0.9)
    path = Artifact(det, thr, {"model_version": "smooth"}).save(tmp_path / "a")
    assert json.loads((path / "detector.json").read_text())["model"]["score_smoothing"] == 2.0
    loaded = Artifact.load(path)
    assert loaded.detector.score_smoothing == 2.0
    np.testing.assert_array_equal(loaded.score(x), det.score(x))
    loaded.detector.use_backend("numpy")  # the fast path smooths the same way
    np.testing.assert_allclose(loaded.score(x), det.score(x), rtol=1e-4, atol=1e-6)


def test_artifact_without_the_field_scores_plain_mae(small_artifact: Path, tmp_path: Path) -> None:
    # Artifacts written before the option existed have no score_smoothing: plain MAE.
    path = tmp_path / "old"
    shutil.copytree(small_artifact, path)
    rewrite_metadata(path, lambda meta: meta["model"].pop("score_smoothing"))
    assert Artifact.load(path).detector.score_smoothing == 0.0


@pytest.mark.parametrize("value", [-2, 50])
def test_bad_smoothing_in_metadata_is_refused(
    small_artifact: Path, tmp_path: Path, value: float
) -> None:
    path = tmp_path / "bad"
    shutil.copytree(small_artifact, path)
    rewrite_metadata(path, lambda meta: meta["model"].update(score_smoothing=value))
    with pytest.raises(IncompatibleArtifactError, match="score_smoothing") as info:
        Artifact.load(path)
    assert "detector.json" in str(info.value)
