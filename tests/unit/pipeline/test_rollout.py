"""Hot roll-out with fakes: the switch falls between batches (a batch in progress keeps the
model it started with), a refused version keeps the old one with a log line, a metric and no
retry until ``latest`` moves again, and the gauges follow the served model."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pytest

from pipeline.metrics import create_metrics
from pipeline.policy import AlertPolicy
from pipeline.processor import InRecord, WindowProcessor
from pipeline.rollout import ModelRollout, smoke_check
from tests.bad_messages import window_doc
from tests.unit.pipeline.test_pipeline_processor import (
    TOPICS,
    FakeArtifact,
    FakeDetector,
    FakeThreshold,
)


@dataclass
class Registry:
    """``latest`` and what loading each version gives (or raises)."""

    latest: str | None
    models: dict[str, Any] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)

    def load(self, version: str) -> Any:
        self.loads.append(version)
        model = self.models[version]
        if isinstance(model, Exception):
            raise model
        return model


def _setup(registry: Registry) -> tuple[WindowProcessor, ModelRollout, Any]:
    metrics = create_metrics()
    proc = WindowProcessor(
        FakeArtifact(FakeDetector(), version="v1"),  # type: ignore[arg-type]
        metrics,
        TOPICS,
        AlertPolicy(),
        64 * 1024,
    )
    metrics.model_info.labels("v1", "dense").set(1)
    rollout = ModelRollout(proc, metrics, lambda: registry.latest, registry.load, poll_s=60)
    return proc, rollout, metrics


def _records(n: int, seq0: int = 0) -> list[InRecord]:
    return [
        InRecord(
            "w",
            0,
            seq0 + i,
            b"a",
            json.dumps(window_doc("a", seq0 + i, samples=[0.9] * 140)).encode(),
        )
        for i in range(n)
    ]


def _versions(result: Any) -> set[str]:
    return {orjson.loads(r.value)["model_version"] for r in result.scores}


def test_switch_between_batches_and_every_record_names_its_model() -> None:
    v2 = FakeArtifact(FakeDetector(), FakeThreshold(0.95), version="v2")
    reg = Registry("v1", {"v2": v2})
    proc, rollout, metrics = _setup(reg)
    assert rollout.check() is None and reg.loads == []
    reg.latest = "v2"

    # A batch already running when the switch lands keeps the model it started with.
    real_score = proc._score

    def score_then_switch(model: Any, windows: np.ndarray) -> Any:
        assert rollout.check() == "switched"
        return real_score(model, windows)

    proc._score = score_then_switch  # type: ignore[method-assign]
    first = proc.compute(_records(5))
    proc._score = real_score  # type: ignore[method-assign]
    assert _versions(first) == {"v1"} and all(
        orjson.loads(r.value)["anomaly"] for r in first.scores
    )
    alerts = proc.alerts(first, {})
    assert {orjson.loads(a.value)["model_version"] for a in alerts} == {"v1"}

    second = proc.compute(_records(5, seq0=5))
    assert _versions(second) == {"v2"}
    assert not any(orjson.loads(r.value)["anomaly"] for r in second.scores)  # v2's threshold
    reg_ = metrics.registry
    assert reg_.get_sample_value("ecg_model_info", {"version": "v2", "kind": "dense"}) == 1
    assert reg_.get_sample_value("ecg_model_info", {"version": "v1", "kind": "dense"}) is None
    assert reg_.get_sample_value("ecg_model_threshold") == 0.95
    assert reg_.get_sample_value("ecg_model_reloads_total", {"outcome": "switched"}) == 1


def test_a_refused_version_keeps_the_old_model(caplog: pytest.LogCaptureFixture) -> None:
    bad = ValueError("/reg/v2/model.keras: sha256 mismatch")
    reg = Registry("v2", {"v2": bad})
    proc, rollout, metrics = _setup(reg)
    with caplog.at_level(logging.ERROR):
        assert rollout.check() == "refused"
    assert "refusing version v2" in caplog.text and "model.keras" in caplog.text
    assert proc.model.version == "v1"
    assert metrics.registry.get_sample_value("ecg_model_refused") == 1
    assert rollout.check() is None and reg.loads == ["v2"]  # not retried every poll
    # latest moves on to a good version: switched, and the refusal is over
    reg.latest, reg.models["v3"] = "v3", FakeArtifact(FakeDetector(), version="v3")
    assert rollout.check() == "switched" and proc.model.version == "v3"
    assert metrics.registry.get_sample_value("ecg_model_refused") == 0
    counts = metrics.registry.get_sample_value
    assert counts("ecg_model_reloads_total", {"outcome": "refused"}) == 1


def test_a_model_that_loads_but_scores_nan_is_refused() -> None:
    class NanDetector(FakeDetector):
        def score(self, windows: np.ndarray) -> np.ndarray:
            return np.full(len(windows), np.nan, dtype=np.float32)

    nan_model = FakeArtifact(NanDetector(), version="v2")
    with pytest.raises(ValueError, match="non-finite"):
        smoke_check(nan_model)
    reg = Registry("v2", {"v2": nan_model})
    proc, rollout, _ = _setup(reg)
    assert rollout.check() == "refused" and proc.model.version == "v1"


def test_latest_back_at_the_served_version_clears_a_refusal() -> None:
    reg = Registry("v2", {"v2": RuntimeError("broken")})
    _, rollout, metrics = _setup(reg)
    rollout.check()
    reg.latest = "v1"  # rolled back to what the worker serves
    assert rollout.check() is None
    assert metrics.registry.get_sample_value("ecg_model_refused") == 0
