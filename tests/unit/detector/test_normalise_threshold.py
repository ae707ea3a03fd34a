"""Normaliser round trip and both label-free threshold policies."""

from __future__ import annotations

import numpy as np
import pytest

from detector import DetectorConfigError, Threshold, fit_threshold
from detector.errors import NotFittedError
from detector.normalise import MinMaxNormaliser


def test_normaliser_round_trip_and_persistence() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 140)) * 3 + 1
    norm = MinMaxNormaliser().fit(x)
    z = norm.transform(x)
    assert z.min() == pytest.approx(0.0, abs=1e-6) and z.max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(norm.inverse_transform(z), x, atol=1e-5)
    again = MinMaxNormaliser.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.transform(x), z)


def test_normaliser_errors() -> None:
    with pytest.raises(NotFittedError):
        MinMaxNormaliser().transform(np.zeros(3))
    with pytest.raises(DetectorConfigError, match="constant"):
        MinMaxNormaliser().fit(np.ones((3, 140)))
    with pytest.raises(DetectorConfigError, match="normalisation.kind"):
        MinMaxNormaliser.from_dict({"kind": "zscore", "min": 0, "max": 1})


def test_mean_std_policy() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    th = fit_threshold("mean_std", scores, k=1.0)
    assert th.value == pytest.approx(2.5 + np.std(scores))
    th2 = fit_threshold("mean_std", scores, k=2.0)
    assert th2.value > th.value
    assert th.classify(np.array([2.0, 3.7])).tolist() == [False, True]


def test_quantile_policy_is_a_false_alarm_rate() -> None:
    rng = np.random.default_rng(1)
    normal = rng.exponential(size=10_000)
    th = fit_threshold("quantile", normal, q=0.95)
    fresh = rng.exponential(size=100_000)
    assert th.classify(fresh).mean() == pytest.approx(0.05, abs=0.005)
    assert th.to_dict()["policy"] == "quantile"
    assert Threshold.from_dict(th.to_dict()) == th


def test_threshold_errors_name_the_parameter() -> None:
    with pytest.raises(DetectorConfigError, match="threshold.q"):
        fit_threshold("quantile", np.ones(3), q=1.5)
    with pytest.raises(DetectorConfigError, match="best_guess"):
        fit_threshold("best_guess", np.ones(3))
    with pytest.raises(DetectorConfigError, match="threshold.z"):
        fit_threshold("mean_std", np.ones(3), z=1)
    with pytest.raises(DetectorConfigError, match="non-empty"):
        fit_threshold("mean_std", np.array([]))
