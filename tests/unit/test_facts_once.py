"""Facts defined once: topic names and the alert settings' checks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.errors import PipelineConfigError
from pipeline.policy import AlertPolicy
from pipeline.settings import DEFAULT_TOPICS, WorkerSettings

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("detector", "training", "pipeline", "ecgwatch", "benchmarks")
TOPIC_HOME = REPO / "pipeline" / "settings.py"


def test_topic_names_are_spelled_out_only_in_pipeline_settings() -> None:
    names = {
        DEFAULT_TOPICS.windows,
        DEFAULT_TOPICS.scores,
        DEFAULT_TOPICS.alerts,
        DEFAULT_TOPICS.dlq,
    }
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == TOPIC_HOME:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and node.value in names:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert offenders == [], "use pipeline.settings.DEFAULT_TOPICS instead"


@pytest.mark.parametrize(("field", "value"), [("cooldown_s", -1.0), ("critical_ratio", 1.0)])
def test_alert_settings_are_checked_by_the_policy(field: str, value: float) -> None:
    with pytest.raises(PipelineConfigError) as from_policy:
        AlertPolicy(**{field: value})
    with pytest.raises(PipelineConfigError) as from_settings:
        WorkerSettings(**{field: value})  # type: ignore[arg-type]
    assert str(from_settings.value) == str(from_policy.value)
    assert f"alerts.{field}" in str(from_settings.value)


def test_worker_settings_build_their_policy() -> None:
    assert WorkerSettings(cooldown_s=5, critical_ratio=3).alert_policy() == AlertPolicy(5, 3)
