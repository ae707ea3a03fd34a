"""WindowProcessor with a fake detector: batch scoring, per-window fallback, dead letters,
alerts (episodes, per-window mode, fail-open) and metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pytest

from pipeline.metrics import PipelineMetrics, create_metrics
from pipeline.policy import AlertPolicy
from pipeline.processor import InRecord, WindowProcessor
from pipeline.settings import TopicNames
from tests.bad_messages import BAD_MESSAGES, window_doc

THRESHOLD = 0.5
POISON = 99.0  # the fake detector fails on any window containing this value
FLAT = -7.0  # the fake detector calls a window of only this value flat


@dataclass
class FakeDetector:
    """Score = mean |x|; raises on POISON, or on every multi-window call if ``batch_fails``."""

    batch_fails: bool = False
    calls: list[int] = field(default_factory=list)
    kind: str = "dense"

    def flat(self, windows: np.ndarray) -> np.ndarray:
        return np.asarray((windows == FLAT).all(axis=1))

    def score(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(len(windows))
        if (self.batch_fails and len(windows) > 1) or (windows == POISON).any():
            raise RuntimeError("detector broke")
        return np.abs(windows).mean(axis=1).astype(np.float32)


@dataclass
class FakeThreshold:
    value: float = THRESHOLD


@dataclass
class FakeArtifact:
    """A :class:`pipeline.scorer.Scorer` around the fake detector."""

    detector: FakeDetector
    threshold: FakeThreshold = field(default_factory=FakeThreshold)
    version: str = "v-test"

    def flat(self, windows: np.ndarray) -> np.ndarray:
        return self.detector.flat(windows)

    def predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.detector.score(windows)
        return scores, np.asarray(scores, dtype=np.float64) > self.threshold.value


TOPICS = TopicNames("w", "s", "a", "d")


def _processor(
    det: FakeDetector | None = None, policy: AlertPolicy | None = None
) -> tuple[WindowProcessor, PipelineMetrics]:
    metrics = create_metrics()
    clock = iter(range(1000, 100000))
    proc = WindowProcessor(
        FakeArtifact(det or FakeDetector()),  # type: ignore[arg-type]
        metrics,
        TOPICS,
        policy or AlertPolicy(cooldown_s=30),
        64 * 1024,
        clock=lambda: float(next(clock)),
    )
    return proc, metrics


def _window(device: str, seq: int, level: float, ts: float = 500.0) -> bytes:
    return json.dumps(window_doc(device, seq, ts=ts, samples=[level] * 140)).encode()


def _records(values: list[bytes | None]) -> list[InRecord]:
    return [InRecord("w", 2, 10 + i, f"k{i}".encode(), v) for i, v in enumerate(values)]


def _count(m: PipelineMetrics, name: str, **labels: str) -> float:
    v = m.registry.get_sample_value(name, labels or None)
    return 0.0 if v is None else v


def test_batch_is_scored_in_one_call() -> None:
    det = FakeDetector()
    proc, m = _processor(det)
    res = proc.compute(_records([_window("a", 0, 0.1), _window("b", 0, 0.9), _window("a", 1, 0.2)]))
    assert det.calls == [3]
    scores = [orjson.loads(r.value) for r in res.scores]
    assert [(s["device_id"], s["seq"], s["anomaly"]) for s in scores] == [
        ("a", 0, False),
        ("b", 0, True),
        ("a", 1, False),
    ]
    assert scores[1]["score"] == pytest.approx(0.9) and scores[1]["threshold"] == THRESHOLD
    assert scores[1]["model_version"] == "v-test" and scores[1]["ts"] == 500.0
    assert [r.topic for r in res.scores] == ["s"] * 3
    assert [r.key for r in res.scores] == [b"a", b"b", b"a"]  # the device, not the input key
    assert res.dlq == [] and [a[:3] for a in res.anomalies] == [(1, "b", 0)]
    assert _count(m, "ecg_windows_total", outcome="scored") == 3
    assert _count(m, "ecg_windows_anomalous_total") == 1
    assert _count(m, "ecg_scoring_batch_size_sum") == 3


def test_scores_of_unkeyed_input_are_keyed_by_device() -> None:
    proc, _ = _processor()
    recs = [InRecord("w", 0, 5, None, _window("dev-7", 3, 0.1))]
    (score,) = proc.compute(recs).scores
    assert score.key == b"dev-7"


def test_per_window_fallback_when_the_batch_call_fails() -> None:
    det = FakeDetector(batch_fails=True)
    proc, m = _processor(det)
    values = [_window("a", 0, 0.1), _window("a", 1, POISON), _window("a", 2, 0.7)]
    res = proc.compute(_records(values))
    assert det.calls == [3, 1, 1, 1]
    assert [orjson.loads(r.value)["seq"] for r in res.scores] == [0, 2]
    [dead] = [orjson.loads(r.value) for r in res.dlq]
    assert (
        dead["reason"] == "scoring_error" and dead["offset"] == 11 and "detector" in dead["detail"]
    )
    assert _count(m, "ecg_windows_total", outcome="scored") == 2
    assert _count(m, "ecg_windows_rejected_total", reason="scoring_error") == 1
    assert _count(m, "ecg_reconstruction_error_count") == 2
    assert len(res.window_ts) == 2


def test_scoring_error_for_every_window_when_the_detector_always_fails() -> None:
    proc, m = _processor()
    res = proc.compute(_records([_window("a", 0, POISON), _window("a", 1, POISON)]))
    assert res.scores == []
    assert [orjson.loads(r.value)["reason"] for r in res.dlq] == ["scoring_error"] * 2
    assert _count(m, "ecg_windows_total", outcome="rejected") == 2


def test_bad_messages_never_cost_valid_windows() -> None:
    """Regression: a huge-integer ts or a lone-surrogate device id used to raise out of
    ``compute``, and the agent then dead-lettered the whole batch as ``scoring_error``."""
    proc, m = _processor()
    recs = []
    for i, bad in enumerate(BAD_MESSAGES):
        recs.append(InRecord("w", 0, 2 * i, b"ok", _window("ok", i, 0.1)))
        recs.append(InRecord("w", 0, 2 * i + 1, b"bad", bad.value, list(bad.headers) or None))
    res = proc.compute(recs)
    assert [orjson.loads(r.value)["seq"] for r in res.scores] == list(range(len(BAD_MESSAGES)))
    dead = [orjson.loads(r.value) for r in res.dlq]
    assert [(d["offset"], d["reason"]) for d in dead] == [
        (2 * i + 1, b.reason) for i, b in enumerate(BAD_MESSAGES)
    ]
    assert _count(m, "ecg_windows_total", outcome="rejected") == len(BAD_MESSAGES)
    assert _count(m, "ecg_windows_total", outcome="scored") == len(BAD_MESSAGES)


def test_unencodable_score_is_dead_lettered_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.processor as processor_mod

    real = processor_mod.encode_json

    def encode(record: dict[str, Any]) -> bytes:
        if record.get("device_id") == "boom":
            raise TypeError("cannot serialise")
        return real(record)

    monkeypatch.setattr(processor_mod, "encode_json", encode)
    proc, m = _processor()
    res = proc.compute(_records([_window("ok", 0, 0.9), _window("boom", 0, 0.9)]))
    assert [orjson.loads(r.value)["device_id"] for r in res.scores] == ["ok"]
    [dead] = [orjson.loads(r.value) for r in res.dlq]
    assert dead["reason"] == "scoring_error" and dead["offset"] == 11
    assert [a[1] for a in res.anomalies] == ["ok"]
    assert _count(m, "ecg_windows_total", outcome="scored") == 1


def _two_devices_alerts(
    proc: WindowProcessor, entered: list[int] | None = None
) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
    """Device a: two warnings (0.6, 0.7); device b: one critical (1.2). The alert records,
    their decoded values and the state; ``entered`` gets the positions entered."""
    res = proc.compute(_records([_window("a", 0, 0.6), _window("a", 1, 0.7), _window("b", 0, 1.2)]))
    state: dict[str, Any] = {}
    alerts = proc.alerts(res, state, (entered if entered is not None else []).append)
    return alerts, [orjson.loads(a.value) for a in alerts], state


def test_alerts_open_one_episode_per_device_and_call_enter() -> None:
    proc, m = _processor()
    entered: list[int] = []
    alerts, docs, state = _two_devices_alerts(proc, entered)
    assert entered == [1, 2]  # once per device, at its newest window (one state write)
    assert [(d["device_id"], d["seq"], d["phase"], d["priority"]) for d in docs] == [
        ("a", 0, "start", "medium"),  # seq 1 is inside the update interval
        ("b", 0, "start", "high"),
    ]
    assert [a.topic for a in alerts] == ["a", "a"] and alerts[0].key == b"a"
    assert docs[0]["episode_id"] == AlertPolicy.episode_id("a", 0, "v-test")
    assert docs[0]["alert_id"] == AlertPolicy.record_id("a", 0, "start", "v-test")
    assert state["a"]["open"] and state["a"]["anomalous_windows"] == 2
    assert _count(m, "ecg_alerts_total", severity="critical") == 1


def test_normal_windows_end_an_open_episode_and_cost_nothing_elsewhere() -> None:
    proc, _ = _processor(policy=AlertPolicy(end_after_normal=2))
    state: dict[str, Any] = {}
    first = proc.compute(_records([_window("a", 0, 0.6, ts=1.0), _window("b", 0, 0.1, ts=1.0)]))
    assert [orjson.loads(a.value)["phase"] for a in proc.alerts(first, state)] == ["start"]
    entered: list[int] = []
    values = [_window("b", 1, 0.1, ts=2.0), _window("a", 1, 0.1, ts=2.0)]
    values += [_window("a", 2, 0.1, ts=3.0), _window("a", 3, 0.1, ts=4.0)]
    res = proc.compute(_records(values))
    docs = [orjson.loads(a.value) for a in proc.alerts(res, state, entered.append)]
    # One write, at the end of a's episode (pos 2): device b (no episode) and a's window
    # after the end leave the state untouched.
    assert entered == [2]
    [end] = docs
    assert (end["phase"], end["seq"], end["windows_seen"], end["anomalous_windows"]) == (
        "end",
        2,
        3,
        1,
    )
    assert end["episode_id"] == AlertPolicy.episode_id("a", 0, "v-test")
    assert state == {"a": {"open": False, "seen_ts": 3.0, "seen_seq": 2}}
    assert "b" not in state


def test_per_window_mode_keeps_the_cooldown_alerts() -> None:
    proc, m = _processor(policy=AlertPolicy(cooldown_s=30, mode="per_window"))
    _, docs, _ = _two_devices_alerts(proc)
    assert [(d["device_id"], d["seq"], d["severity"]) for d in docs] == [
        ("a", 0, "warning"),
        ("b", 0, "critical"),
    ]
    assert docs[0]["alert_id"] == AlertPolicy.alert_id("a", 0, "v-test")
    assert "phase" not in docs[0]
    assert _count(m, "ecg_alerts_total", severity="critical") == 1


class BrokenState(MutableMapping[str, Any]):
    """A table whose reads fail (e.g. mid-rebalance)."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("table unavailable")

    def __setitem__(self, key: str, value: Any) -> None:
        raise RuntimeError("table unavailable")

    def __delitem__(self, key: str) -> None:
        raise RuntimeError("table unavailable")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class CountingState(dict[str, Any]):
    """A dict that records its writes (each is a changelog record for the Faust table)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)


def test_each_device_state_is_written_once_per_batch_as_window_by_window() -> None:
    levels = [("a", 0, 0.6), ("b", 0, 0.7), ("a", 1, 0.7), ("b", 1, 0.1), ("a", 2, 0.6)]
    proc, _ = _processor()
    entered: list[int] = []
    state = CountingState()
    res = proc.compute(_records([_window(*x) for x in levels]))
    docs = [orjson.loads(a.value) for a in proc.alerts(res, state, entered.append)]
    assert state.writes == ["a", "b"]
    assert entered == [4, 3]  # each device's newest window: its changelog partition
    assert state["a"]["anomalous_windows"] == 3 and state["b"]["normal_run"] == 1
    # The same windows one batch each give the same alerts and the same final states.
    one, _ = _processor()
    one_state = CountingState()
    one_docs = []
    for x in levels:
        r = one.compute(_records([_window(*x)]))
        one_docs += [orjson.loads(a.value) for a in one.alerts(r, one_state)]
    assert dict(state) == dict(one_state)
    strip = [{k: v for k, v in d.items() if k != "detected_at"} for d in docs]
    assert strip == [{k: v for k, v in d.items() if k != "detected_at"} for d in one_docs]


@pytest.mark.parametrize("mode", ["episodes", "per_window"])
def test_alerts_fail_open_when_the_state_is_broken(mode: str) -> None:
    proc, _ = _processor(policy=AlertPolicy(mode=mode))
    res = proc.compute(_records([_window("a", 0, 0.6), _window("a", 1, 0.7), _window("a", 2, 0.1)]))
    alerts = proc.alerts(res, BrokenState())
    # No de-duplication possible: every anomaly alerts rather than none.
    docs = [orjson.loads(a.value) for a in alerts]
    assert [d["seq"] for d in docs] == [0, 1]
    if mode == "episodes":
        assert [d["phase"] for d in docs] == ["start", "start"]


def test_delivered_records_latency() -> None:
    proc, m = _processor()
    res = proc.compute(_records([_window("a", 0, 0.1, ts=990.0), b"{"]))
    proc.delivered(res)
    assert _count(m, "ecg_end_to_end_latency_seconds_count") == 1
    assert _count(m, "ecg_end_to_end_latency_seconds_sum") > 0


def test_fail_batch_dead_letters_everything() -> None:
    proc, _ = _processor()
    recs = _records([_window("a", 0, 0.1), None])
    res = proc.fail_batch(recs, "internal error: boom")
    docs = [orjson.loads(r.value) for r in res.dlq]
    assert [(d["reason"], d["offset"], d["detail"]) for d in docs] == [
        ("scoring_error", 10, "internal error: boom"),
        ("scoring_error", 11, "internal error: boom"),
    ]


def test_rejects_are_counted_once_when_compute_fails_half_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # compute dead-letters the bad message, then breaks (an internal bug); the engine then
    # dead-letters the whole batch with fail_batch. Each window must be counted exactly once.
    proc, m = _processor()
    recs = _records([b"{", _window("a", 0, 0.1)])

    def broken(model: Any, windows: np.ndarray) -> Any:
        raise MemoryError("internal bug")

    monkeypatch.setattr(proc, "_score", broken)
    with pytest.raises(MemoryError):
        proc.compute(recs)
    res = proc.fail_batch(recs, "internal error: boom")
    assert len(res.dlq) == 2
    assert _count(m, "ecg_windows_total", outcome="rejected") == 2
    assert _count(m, "ecg_windows_rejected_total", reason="scoring_error") == 2
    assert _count(m, "ecg_windows_rejected_total", reason="invalid_json") == 0


def test_flat_windows_are_dead_lettered_and_the_rest_scored_in_one_call() -> None:
    det = FakeDetector()
    proc, m = _processor(det)
    values = [_window("a", 0, 0.1), _window("a", 1, FLAT), _window("a", 2, 0.7)]
    res = proc.compute(_records(values))
    assert det.calls == [2]  # one batch call, without the flat window
    assert [orjson.loads(r.value)["seq"] for r in res.scores] == [0, 2]
    [dead] = [orjson.loads(r.value) for r in res.dlq]
    assert dead["reason"] == "flat_window" and dead["offset"] == 11
    assert "flat line" in dead["detail"]
    assert _count(m, "ecg_windows_rejected_total", reason="flat_window") == 1
    assert _count(m, "ecg_windows_total", outcome="scored") == 2
    assert _count(m, "ecg_scoring_batch_size_sum") == 2  # what the detector scored
