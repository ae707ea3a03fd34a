"""Shadow scoring with fakes: every scored window carries the shadow's score and decision in
fields of its own, the agreement and score-ratio metrics count them, a failing shadow costs
only its fields, and the shadow never raises an alert."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import orjson

from pipeline.metrics import create_metrics
from pipeline.policy import AlertPolicy
from pipeline.processor import InRecord, WindowProcessor
from tests.bad_messages import window_doc
from tests.unit.pipeline.test_pipeline_processor import (
    FLAT,
    TOPICS,
    FakeArtifact,
    FakeDetector,
    FakeThreshold,
)

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "pipeline" / "schemas" / "score.schema.json").read_text()
)


class Doubling(FakeDetector):
    def score(self, windows: np.ndarray) -> np.ndarray:
        return 2 * super().score(windows)


class Broken(FakeDetector):
    def score(self, windows: np.ndarray) -> np.ndarray:
        raise RuntimeError("shadow broke")


def _proc(shadow: FakeArtifact) -> tuple[WindowProcessor, object]:
    metrics = create_metrics()
    proc = WindowProcessor(
        FakeArtifact(FakeDetector(), version="v1"),  # type: ignore[arg-type]
        metrics,
        TOPICS,
        AlertPolicy(),
        64 * 1024,
        shadow=shadow,  # type: ignore[arg-type]
    )
    return proc, metrics


def _records(levels: list[float]) -> list[InRecord]:
    return [
        InRecord("w", 0, i, b"a", json.dumps(window_doc("a", i, samples=[v] * 140)).encode())
        for i, v in enumerate(levels)
    ]


def test_shadow_fields_and_agreement_metrics() -> None:
    # served: threshold 0.5 on mean|x|; shadow: doubled scores, threshold 0.5 as well
    proc, metrics = _proc(FakeArtifact(Doubling(), FakeThreshold(0.5), version="cand"))
    result = proc.compute(_records([0.1, 0.3, 0.9, FLAT]))
    scores = [orjson.loads(r.value) for r in result.scores]
    assert [r["shadow_model_version"] for r in scores] == ["cand"] * 3
    assert [r["shadow_score"] for r in scores] == [2 * r["score"] for r in scores]
    assert [(r["anomaly"], r["shadow_anomaly"]) for r in scores] == [
        (False, False),
        (False, True),
        (True, True),
    ]
    for r in scores:
        jsonschema.validate(r, SCHEMA)
    value = metrics.registry.get_sample_value  # type: ignore[attr-defined]
    assert value("ecg_shadow_windows_total", {"agreement": "agree"}) == 2
    assert value("ecg_shadow_windows_total", {"agreement": "disagree"}) == 1
    assert value("ecg_shadow_score_ratio_count") == 3
    assert value("ecg_shadow_score_ratio_bucket", {"le": "1.95"}) is None  # no such bound
    assert value("ecg_shadow_score_ratio_bucket", {"le": "1.5"}) == 0
    assert value("ecg_shadow_score_ratio_bucket", {"le": "2.0"}) == 3
    alerts = [orjson.loads(a.value) for a in proc.alerts(result, {})]
    assert all(a["model_version"] == "v1" for a in alerts)  # the shadow raises none
    assert [a["seq"] for a in alerts] == [2]


def test_a_failing_shadow_costs_only_its_fields() -> None:
    proc, metrics = _proc(FakeArtifact(Broken(), version="cand"))
    result = proc.compute(_records([0.1, 0.9]))
    scores = [orjson.loads(r.value) for r in result.scores]
    assert len(scores) == 2 and result.dlq == []
    assert not any("shadow_score" in r for r in scores)
    value = metrics.registry.get_sample_value  # type: ignore[attr-defined]
    assert value("ecg_shadow_windows_total", {"agreement": "failed"}) == 2
