"""Train the seed preset on ../shared/data through the CLI, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def ecgwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecgwatch", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    reg = tmp_path_factory.mktemp("registry")
    proc = ecgwatch(
        "train", "--preset", "seed", "--registry", str(reg), "--data", str(shared_data), "--quiet"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"artifact: {reg}" in proc.stdout
    return reg / "latest"


def test_seed_metrics_meet_the_tutorial(trained: Path) -> None:
    m = json.loads((trained / "report" / "metrics.json").read_text())
    npos, apos = m["normal_positive"], m["anomaly_positive"]
    assert npos["accuracy"] >= 0.93 and npos["precision"] >= 0.98 and npos["recall"] >= 0.88
    assert apos["f1"] >= 0.92 and apos["roc_auc"] >= 0.95 and 0 < apos["pr_auc"] <= 1
    assert m["n"] == 1000
    for png in (
        "loss.png",
        "error_histogram.png",
        "reconstruction_normal.png",
        "reconstruction_abnormal.png",
    ):
        assert (trained / "report" / png).read_bytes()[:4] == b"\x89PNG"
    assert "normal = positive" in (trained / "report" / "report.md").read_text()
    meta = json.loads((trained / "detector.json").read_text())
    assert meta["threshold"]["policy"] == "mean_std" and meta["seed"] == 42
    assert meta["metrics"]["normal_positive"] == npos


def test_evaluate_reproduces_metrics(trained: Path, tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "m.json"
    proc = ecgwatch(
        "evaluate", "--model", str(trained), "--data", str(shared_data), "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert "matches the metrics stored at training time: yes" in proc.stdout
    stored = json.loads((trained / "report" / "metrics.json").read_text())
    again = json.loads(out.read_text())
    assert again["normal_positive"] == stored["normal_positive"]
    assert again["anomaly_positive"] == stored["anomaly_positive"]


def test_same_config_and_seed_same_metrics(trained: Path, shared_data: Path) -> None:
    from training import load_config, train

    result = train(load_config("seed"), data=shared_data)
    stored = json.loads((trained / "report" / "metrics.json").read_text())
    assert result.metrics["normal_positive"] == stored["normal_positive"]
    assert result.metrics["anomaly_positive"] == stored["anomaly_positive"]


def test_tampered_model_fails_with_one_line(trained: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "a"
    shutil.copytree(trained.resolve(), copy)
    data = bytearray((copy / "model.keras").read_bytes())
    data[100] ^= 1
    (copy / "model.keras").write_bytes(bytes(data))
    proc = ecgwatch("evaluate", "--model", str(copy))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "model.keras" in last and "checksum mismatch" in last


def test_bad_preset_is_one_line_error(tmp_path: Path) -> None:
    proc = ecgwatch("train", "--preset", "nope", "--registry", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("ecgwatch train: error: --preset")
