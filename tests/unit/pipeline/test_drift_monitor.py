"""The live drift monitor: NaN until enough windows, a sliding window that forgets old data,
and the processor exporting ``ecg_score_drift`` / ``ecg_input_drift`` for the served model
(starting again when a roll-out changes it)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from detector.drift import DriftReference
from pipeline.drift import MIN_SAMPLES, DriftMonitor
from pipeline.metrics import create_metrics
from pipeline.policy import AlertPolicy
from pipeline.processor import InRecord, WindowProcessor
from tests.bad_messages import window_doc
from tests.unit.pipeline.test_pipeline_processor import TOPICS, FakeArtifact, FakeDetector


def _beats(n: int, seed: int, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 140)
    return rng.uniform(0.5, 2.0, (n, 1)) * np.sin(2 * np.pi * t) + offset


def _reference() -> DriftReference:
    x = _beats(4000, 0)
    return DriftReference.fit(np.abs(x).mean(axis=1), x)


def _feed(monitor: DriftMonitor, x: np.ndarray) -> None:
    for i in range(0, len(x), 100):
        b = x[i : i + 100]
        monitor.add(np.abs(b).mean(axis=1), b)


def test_nan_until_enough_then_low_then_high_after_a_shift_and_low_again() -> None:
    monitor = DriftMonitor(_reference(), window=1000)
    _feed(monitor, _beats(MIN_SAMPLES - 100, 1))
    assert np.isnan(monitor.score_drift())
    _feed(monitor, _beats(1000, 2))
    assert monitor.score_drift() < 0.05 and max(monitor.input_drift().values()) < 0.05
    _feed(monitor, _beats(1000, 3, offset=1.0))  # the whole window is shifted now
    assert monitor.score_drift() > 0.25 and monitor.input_drift()["min"] > 0.25
    _feed(monitor, _beats(1000, 4))  # and forgotten once the window has moved on
    assert monitor.score_drift() < 0.05


@dataclass
class RefArtifact(FakeArtifact):
    drift_reference: DriftReference | None = None


def _batch(x: np.ndarray, seq0: int) -> list[InRecord]:
    return [
        InRecord(
            "w",
            0,
            seq0 + i,
            b"a",
            json.dumps(window_doc("a", seq0 + i, samples=row.tolist())).encode(),
        )
        for i, row in enumerate(x)
    ]


def test_the_processor_exports_the_served_models_drift_and_restarts_on_a_switch() -> None:
    metrics = create_metrics()
    ref = _reference()
    proc = WindowProcessor(
        RefArtifact(FakeDetector(), version="v1", drift_reference=ref),  # type: ignore[arg-type]
        metrics,
        TOPICS,
        AlertPolicy(),
        64 * 1024,
        drift_window=500,
    )
    value = metrics.registry.get_sample_value
    proc.compute(_batch(_beats(300, 5, offset=1.0), 0))
    assert value("ecg_score_drift") > 0.25
    assert value("ecg_input_drift", {"statistic": "max"}) > 0.25
    proc.model = RefArtifact(FakeDetector(), version="v2", drift_reference=ref)  # a roll-out
    proc.compute(_batch(_beats(100, 6), 300))
    assert np.isnan(value("ecg_score_drift"))  # the new model's window starts empty
    proc.model = FakeArtifact(FakeDetector(), version="v3")  # no reference stored
    proc.compute(_batch(_beats(300, 7), 400))
    assert np.isnan(value("ecg_score_drift"))
