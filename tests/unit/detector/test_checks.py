"""The model's checks on how a window was cut (detector.checks): an artifact keeps the
alignment gate and the length search with their fitted levels, and refuses them without."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector import Artifact, fit_threshold
from detector.errors import IncompatibleArtifactError
from tests.unit.detector.metadata import rewrite_metadata
from training.robustness import Level, perturb


@pytest.mark.parametrize(("check", "level"), [("align_gate", "accept"), ("length_search", "floor")])
def test_artifact_keeps_the_checks_and_refuses_one_without_its_level(
    checked: tuple, tmp_path: Path, check: str, level: str
) -> None:
    det, parts = checked
    thr = fit_threshold("quantile", det.score(parts["hold"]), q=0.98)
    path = Artifact(det, thr, {"model_version": "checks-1"}).save(tmp_path / "a")
    meta = json.loads((path / "detector.json").read_text())
    assert meta["model"][check][level] == pytest.approx(getattr(getattr(det, check), level))
    loaded = Artifact.load(path)
    assert loaded.detector.align_gate == det.align_gate
    assert loaded.detector.length_search == det.length_search
    late = perturb(parts["hold"][:50], Level("shift", "+4", 4, shift=4))
    misjudged = perturb(parts["hold"][:50], Level("length", "+7 %", 0.07, scale=1.07))
    for x in (late, misjudged):
        np.testing.assert_allclose(loaded.score(x), det.score(x), rtol=1e-5, atol=1e-7)

    rewrite_metadata(path, lambda meta: meta["model"][check].pop(level))
    with pytest.raises(IncompatibleArtifactError, match=level):
        Artifact.load(path)
