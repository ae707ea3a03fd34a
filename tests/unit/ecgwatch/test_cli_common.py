"""ecgwatch.cli_common: the helpers several commands share, defined once."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from ecgwatch.cli_common import add_kafka_args, format_metrics, overrides_from_args

ECGWATCH = Path(__file__).resolve().parents[3] / "ecgwatch"


def test_overrides_only_for_flags_given() -> None:
    p = argparse.ArgumentParser()
    add_kafka_args(p)
    p.add_argument("--batch-timeout", type=float, default=None)
    args = p.parse_args(["--bootstrap", "b:1", "--batch-timeout", "0.5"])
    assert overrides_from_args(args) == {
        "kafka": {"bootstrap": "b:1"},
        "worker": {"batch_timeout_s": 0.5},
    }
    assert overrides_from_args(p.parse_args([])) == {}


def test_format_metrics_has_both_conventions() -> None:
    side = {"precision": 0.5, "recall": 0.25, "accuracy": 0.75}
    m = {
        "threshold": 0.01,
        "normal_positive": side,
        "anomaly_positive": {
            **side,
            "f1": 0.3,
            "roc_auc": 0.9,
            "pr_auc": 0.8,
            "confusion_matrix": {"tp": 1, "fp": 2, "fn": 3, "tn": 4},
        },
    }
    lines = format_metrics(m).splitlines()
    assert lines[0].split() == ["threshold", "0.010000"]
    assert "F1 0.3000" in lines[2] and "TP 1  FP 2  FN 3  TN 4" in lines[3]


def test_no_module_imports_from_a_command_module() -> None:
    """Commands and the demo share helpers through cli_common, not through each other."""
    offenders = []
    for path in sorted(ECGWATCH.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "ecgwatch.commands."
            ):
                offenders.append(f"{path.relative_to(ECGWATCH)}: {node.module}")
    assert offenders == []
