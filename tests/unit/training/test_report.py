"""The ``report/`` folder of an artifact (``training.report.write_report``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def test_write_report_writes_every_plot_and_the_summary(tmp_path: Path) -> None:
    from training.report import write_report

    rng = np.random.default_rng(0)
    scores = np.r_[rng.uniform(0, 0.1, 50), rng.uniform(0.05, 0.3, 50)]
    normal = np.r_[np.ones(50, int), np.zeros(50, int)]
    side = {"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9}
    metrics = {
        "threshold": 0.08,
        "n": 100,
        "normal_positive": side,
        "anomaly_positive": {
            **side,
            "roc_auc": 0.95,
            "pr_auc": 0.9,
            "confusion_matrix": {"tp": 45, "fp": 5, "fn": 5, "tn": 45},
        },
    }
    beat = np.sin(np.linspace(0, 6, 140))
    folder = write_report(
        tmp_path / "report",
        metrics=metrics,
        history={"loss": [0.3, 0.2, 0.1], "val_loss": [0.35, 0.25, 0.15]},
        test_scores=scores,
        test_normal=normal,
        examples={"normal": (beat, beat * 0.9), "abnormal": (beat, -beat)},
        summary={"model_version": "v1", "preset": "seed", "train_seconds": 1.0},
    )
    for png in ("loss", "error_histogram", "reconstruction_normal", "reconstruction_abnormal"):
        assert (folder / f"{png}.png").read_bytes()[:4] == b"\x89PNG", png
    assert json.loads((folder / "metrics.json").read_text())["threshold"] == 0.08
    text = (folder / "report.md").read_text()
    assert "Threshold: **0.080000**" in text and "TP 45, FP 5, FN 5, TN 45" in text
