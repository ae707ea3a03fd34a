"""Train from WFDB records through the CLI: ECG5000's training split stitched into annotated
records trains the model, its test split stitched the same way tests it.

Issue target: accuracy >= 0.98 on the stitched test records, the whole test under ~2 minutes
on the 2-core dev machine. The target is NOT reached (docs/training-from-records.md,
"Measured"): the ``records`` preset (recommended with a 0.95-quantile threshold; the default
for records, chosen on validation records) reaches 0.959 with seed 42 and 0.958-0.964 over
three seeds; ``continuous``, the default before it, swung between 0.850 and 0.976.
``test_accuracy_target`` records the target as an expected failure; ``FLOOR`` holds the
measured figures so that a regression still fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: The issue's target on the stitched test records.
TARGET = {"accuracy": 0.98}
#: Below the measured run (the default ``records`` preset, seed 42; training split in 4
#: records, seed 0, test split into 2 with seed 100: accuracy 0.959, anomaly F1 0.953,
#: ROC-AUC 0.987; docs/training-from-records.md, "The records preset").
FLOOR = {"accuracy": 0.94, "f1": 0.92, "roc_auc": 0.985}
#: Every annotated beat but the few the extractor cuts elsewhere (and each record's last).
MIN_SENSITIVITY = 0.98


def ecgwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecgwatch", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, Path]:
    """(artifact, records folder): the default ``records`` preset on stitched train records."""
    from training.records import stitch_records

    t0 = time.perf_counter()
    records = tmp_path_factory.mktemp("records")
    stitch_records(records, split="train", records=4, data=shared_data, seed=0)
    stitch_records(records, split="test", records=2, data=shared_data, seed=100)
    reg = tmp_path_factory.mktemp("registry")
    proc = ecgwatch(
        "train",
        "--registry",
        str(reg),
        "--data",
        str(records / "train"),
        "--test-data",
        str(records / "test"),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "WFDB records" in proc.stdout
    assert "[train] preset: records" in proc.stdout  # the default for records
    seconds = time.perf_counter() - t0
    # Reported, not asserted: wall time is the benchmarks' business (a loaded CI machine took
    # 131 s where a quiet one takes 73 s).
    print(f"stitch + train from records: {seconds:.1f} s")
    return reg / "latest", records


def _metrics(artifact: Path) -> dict[str, float]:
    m = json.loads((artifact / "report" / "metrics.json").read_text())
    return {
        "accuracy": m["normal_positive"]["accuracy"],
        "f1": m["anomaly_positive"]["f1"],
        "roc_auc": m["anomaly_positive"]["roc_auc"],
        "n": m["n"],
    }


def test_records_metrics_hold_the_measured_floor(trained: tuple[Path, Path]) -> None:
    artifact, _ = trained
    got = _metrics(artifact)
    print(f"records vs floor/target: {got} floor {FLOOR} target {TARGET}")
    for key, floor in FLOOR.items():
        assert got[key] >= floor, f"{key}: {got[key]:.4f} < floor {floor}"
    assert got["n"] > 980  # the stitched test split's 1000 beats, less the unmatched


@pytest.mark.xfail(
    reason="issue target 0.98 not reached on re-cut stitched beats (measured 0.959); "
    "docs/training-from-records.md",
    strict=False,
)
def test_accuracy_target(trained: tuple[Path, Path]) -> None:
    artifact, _ = trained
    assert _metrics(artifact)["accuracy"] >= TARGET["accuracy"]


def test_report_and_artifact_name_the_records(trained: tuple[Path, Path]) -> None:
    artifact, records = trained
    meta = json.loads((artifact / "detector.json").read_text())
    assert meta["training_data"]["kind"] == "wfdb"
    assert meta["training_data"]["source"] == str(records / "train")
    assert meta["test_data"]["source"] == str(records / "test")
    stats = json.loads((artifact / "report" / "records.json").read_text())
    assert [r["name"] for r in stats["training"]] == [f"train{i:03d}" for i in range(4)]
    assert [r["name"] for r in stats["test"]] == ["test000", "test001"]
    for r in stats["training"] + stats["test"]:
        assert r["sensitivity"] >= MIN_SENSITIVITY, r
        assert r["positive_predictivity"] >= MIN_SENSITIVITY, r
    text = (artifact / "report" / "report.md").read_text()
    assert "(WFDB records)" in text and "## WFDB records" in text and "| test | test001 |" in text


def test_evaluate_reproduces_the_test_records_metrics(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    artifact, _ = trained
    out = tmp_path / "m.json"
    proc = ecgwatch("evaluate", "--model", str(artifact), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "matches the metrics stored at training time: yes" in proc.stdout
    assert "the data differs" not in proc.stdout


def test_missing_annotations_is_a_one_line_error(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    _, records = trained
    import shutil

    copy = tmp_path / "train"
    shutil.copytree(records / "train", copy)
    (copy / "train002.atr").unlink()
    proc = ecgwatch("train", "--registry", str(tmp_path / "reg"), "--data", str(copy))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ecgwatch train: error: ") and "train002.atr: no annotation file" in last
