"""Drift reference and PSI: equal-probability bins on the reference, PSI near zero for the same
population and large for a shifted one, and the reference stored in (and checked with) the
artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detector import Artifact, DetectorConfigError
from detector.drift import DriftReference, input_statistics, psi
from detector.errors import IncompatibleArtifactError
from tests.unit.detector.metadata import rewrite_metadata


def _beats(n: int, seed: int, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 140)
    amp = rng.uniform(0.5, 2.0, (n, 1))
    return amp * np.sin(2 * np.pi * t) + rng.normal(0, 0.1, (n, 140)) + offset


def test_same_population_has_low_psi_and_a_shift_a_high_one() -> None:
    ref_x = _beats(4000, 0)
    scores = np.abs(ref_x).mean(axis=1)
    ref = DriftReference.fit(scores, ref_x)
    assert ref.score_shares == pytest.approx([0.1] * 10, abs=1e-3)
    live = _beats(1000, 1)
    bins = np.bincount(
        np.searchsorted(ref.score_edges, np.abs(live).mean(axis=1), side="right"), minlength=10
    )
    assert psi(bins, np.asarray(ref.score_shares)) < 0.05
    shifted = _beats(1000, 1, offset=0.5)
    stats = input_statistics(shifted)["min"]
    shifted_bins = np.bincount(
        np.searchsorted(ref.input_edges["min"], stats, side="right"), minlength=10
    )
    assert psi(shifted_bins, np.asarray(ref.input_shares["min"])) > 0.25


def test_psi_of_nothing_is_nan_and_identical_shares_zero() -> None:
    assert np.isnan(psi(np.zeros(10), np.full(10, 0.1)))
    assert psi(np.full(10, 7), np.full(10, 0.1)) == pytest.approx(0.0)


def test_roundtrip_and_bad_shapes() -> None:
    x = _beats(500, 2)
    ref = DriftReference.fit(np.abs(x).mean(axis=1), x)
    assert DriftReference.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    broken = ref.to_dict()
    broken["score_shares"] = broken["score_shares"][:-1]
    with pytest.raises(DetectorConfigError, match="bin counts"):
        DriftReference.from_dict(broken)
    with pytest.raises(DetectorConfigError, match="at least"):
        DriftReference.fit(np.ones(20), x[:20])


def test_the_artifact_stores_and_validates_its_reference(
    small_artifact: Path, tmp_path: Path, ecg_arrays: tuple
) -> None:
    art = Artifact.load(small_artifact)
    assert art.drift_reference is None  # written before references existed: no drift
    x = np.asarray(ecg_arrays[0][:500])
    ref = DriftReference.fit(art.score(x), x)
    art.metadata["drift_reference"] = ref.to_dict()
    path = art.save(tmp_path / "with-ref")
    assert Artifact.load(path).drift_reference == ref
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    rewrite_metadata(bad, lambda meta: meta["drift_reference"].pop("input_shares"))
    with pytest.raises(IncompatibleArtifactError, match="drift_reference"):
        Artifact.verify(bad)
