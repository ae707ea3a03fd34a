"""Train the default (``recommended``) preset through the CLI and check its targets.

Issue 6's clean target (seed protocol split, threshold chosen without test labels):
accuracy >= 0.985, anomaly F1 >= 0.985, ROC-AUC >= 0.995, training under 120 s on the 2-core
dev machine. One seed is trained here; the target is a mean over 5 seeds, which
docs/model-quality.md's "Target" section checks (`ecgwatch compare`). The floors asserted
here sit just below the worst of those 5 seeds, so one unlucky seed does not fail CI while a
real regression does. Since issue 12 (per-window z-normalisation and scoring-time alignment)
the preset is *below* the clean target (docs/model-quality.md says by how much): the floors
follow the measured seeds, and the robustness test below checks what the trade bought.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TARGET = {"accuracy": 0.985, "f1": 0.985, "roc_auc": 0.995, "train_seconds": 120.0}
#: Floors this test enforces (measured: see docs/model-quality.md's "Target" section; worst
#: of the 5 seeds: accuracy 0.980, F1 0.9765, ROC-AUC 0.9934; a fresh venv of 2026-12-02 — numpy
#: 2.4.6, TF 2.21, Keras 3.15.1 — gave ROC-AUC 0.99298 with seed 42, hence 0.992).
FLOOR = {"accuracy": 0.978, "f1": 0.974, "roc_auc": 0.992}
#: Perturbation families the shipped preset holds to issue 12's robustness target (false
#: alarms <= 3 %, detection >= 97 %) at every strength (docs/model-quality.md, "Robustness").
ROBUST_FAMILIES = ("offset", "gain", "wander")
#: The shift family's false-alarm ceiling: the alignment gate trades up to a point of shift
#: false alarms for clean accuracy and noise detection (seed 42: 2.96 % at worst; the target
#: is 3 %: docs/model-quality.md, "Alignment gate").
SHIFT_FALSE_ALARMS = 0.035
#: Detection under noise sigma 0.1-0.2 that the gate bought (seed 42: 95.1 % at sigma 0.2,
#: 93.4 % with every window aligned; the target, 97 %, is not met).
NOISE_DETECTION = 0.94


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    reg = tmp_path_factory.mktemp("registry")
    # No --preset: recommended is the default.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecgwatch",
            "train",
            "--registry",
            str(reg),
            "--data",
            str(shared_data),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return reg / "latest"


def test_default_preset_is_recommended(trained: Path) -> None:
    meta = json.loads((trained / "detector.json").read_text())
    assert meta["config"]["name"] == "recommended"
    assert meta["threshold"]["policy"] == "quantile"  # label-free
    assert meta["model"]["score_smoothing"] == 2.0  # the smoothed-residual MAE
    assert meta["model"]["noise_discount"] == 1.5  # ... divided by the beat's noise level
    assert meta["model"]["noise_reference"] > 0  # measured on the fitted normal beats
    assert meta["config"]["training"]["validation"] != "test"


def test_error_histogram_resolves_scores_around_the_threshold(trained: Path) -> None:
    # The worker's ecg_reconstruction_error buckets must not lump the default model's normal
    # beats and its threshold into one bucket (Grafana's quantile panel would be flat).
    from pipeline.metrics import ERROR_BUCKETS

    threshold = json.loads((trained / "detector.json").read_text())["threshold"]["value"]
    below = [b for b in ERROR_BUCKETS if b <= threshold]
    above = [b for b in ERROR_BUCKETS if b > threshold]
    assert len(below) >= 4 and len(above) >= 4, (threshold, ERROR_BUCKETS)


def test_recommended_metrics_against_target(trained: Path) -> None:
    m = json.loads((trained / "report" / "metrics.json").read_text())
    meta = json.loads((trained / "detector.json").read_text())
    got = {
        "accuracy": m["normal_positive"]["accuracy"],
        "f1": m["anomaly_positive"]["f1"],
        "roc_auc": m["anomaly_positive"]["roc_auc"],
        "train_seconds": meta["train_seconds"],
    }
    report = {k: (round(v, 4), TARGET[k]) for k, v in got.items()}
    print(f"recommended vs target: {report}")
    for key, floor in FLOOR.items():
        assert got[key] >= floor, f"{key}: {got[key]:.4f} < floor {floor} (target {TARGET[key]})"
    assert got["train_seconds"] < TARGET["train_seconds"]
    assert m["n"] == 1000 and set(m) >= {"normal_positive", "anomaly_positive", "threshold"}


def test_default_model_is_robust_to_units_wander_and_cut(trained: Path, shared_data: Path) -> None:
    from detector import Artifact
    from training import load_dataset
    from training.config import load_config
    from training.robustness import LEVELS, key, measure
    from training.split import make_split

    artifact = Artifact.load(trained)
    meta = artifact.metadata
    assert meta["normalisation"]["kind"] == "zscore_window"
    split = make_split(load_dataset(shared_data), load_config("recommended"))
    got = measure(artifact.score, artifact.threshold.value, split.x_test, split.y_test)
    for level in LEVELS:
        m = got[key(level)]
        if level.family in ROBUST_FAMILIES:
            assert m["false_alarms"] <= 0.03, (key(level), m)
            assert m["detection"] >= 0.97, (key(level), m)
        elif level.family == "shift":
            assert m["false_alarms"] <= SHIFT_FALSE_ALARMS, (key(level), m)
            assert m["detection"] >= 0.97, (key(level), m)
        elif level.family == "noise":
            assert m["false_alarms"] <= 0.03, (key(level), m)
            assert m["detection"] >= NOISE_DETECTION, (key(level), m)
