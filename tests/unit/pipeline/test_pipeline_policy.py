"""Alert policy: per-device cooldown, severity rise, severity levels, deterministic ids."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import PipelineConfigError
from pipeline.policy import AlertPolicy

THR = 1.0


def test_first_anomaly_alerts_then_cooldown_suppresses() -> None:
    p = AlertPolicy(cooldown_s=30, critical_ratio=2)
    state: dict[str, Any] = {}
    assert p.decide(state, "a", 100.0, 1.5, THR) == "warning"
    assert p.decide(state, "a", 110.0, 1.5, THR) is None
    assert p.decide(state, "a", 129.9, 1.9, THR) is None
    assert p.decide(state, "a", 130.0, 1.5, THR) == "warning"  # cooldown over


def test_devices_are_independent() -> None:
    p = AlertPolicy(cooldown_s=30)
    state: dict[str, Any] = {}
    assert p.decide(state, "a", 100.0, 1.5, THR) == "warning"
    assert p.decide(state, "b", 101.0, 1.5, THR) == "warning"
    assert set(state) == {"a", "b"}


def test_severity_rise_breaks_the_cooldown_but_not_a_fall() -> None:
    p = AlertPolicy(cooldown_s=30, critical_ratio=2)
    state: dict[str, Any] = {}
    assert p.decide(state, "a", 100.0, 1.2, THR) == "warning"
    assert p.decide(state, "a", 101.0, 2.5, THR) == "critical"
    assert p.decide(state, "a", 102.0, 3.0, THR) is None  # same level, still cooling down
    assert p.decide(state, "a", 103.0, 1.2, THR) is None  # lower level
    assert state["a"] == {"ts": 101.0, "level": 1}


def test_zero_cooldown_alerts_every_anomaly() -> None:
    p = AlertPolicy(cooldown_s=0)
    state: dict[str, Any] = {}
    assert [p.decide(state, "a", 100.0 + i, 1.5, THR) for i in range(3)] == ["warning"] * 3


@pytest.mark.parametrize(
    ("score", "want"), [(1.01, "warning"), (1.99, "warning"), (2.0, "critical")]
)
def test_severity_levels(score: float, want: str) -> None:
    assert AlertPolicy(critical_ratio=2).severity(score, THR) == want


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"cooldown_s": -1}, "cooldown_s"), ({"critical_ratio": 1.0}, "critical_ratio")],
)
def test_invalid_settings_are_refused(kwargs: dict[str, float], key: str) -> None:
    with pytest.raises(PipelineConfigError, match=key):
        AlertPolicy(**kwargs)


def test_alert_id_is_deterministic() -> None:
    a = AlertPolicy.alert_id("dev-1", 7, "v1")
    assert a == AlertPolicy.alert_id("dev-1", 7, "v1")
    assert a != AlertPolicy.alert_id("dev-1", 8, "v1")
    assert a != AlertPolicy.alert_id("dev-1", 7, "v2")


def test_late_windows_inside_the_cooldown_do_not_alert_again() -> None:
    # Windows can arrive out of order (retries, several producers per device).
    p = AlertPolicy(cooldown_s=30, critical_ratio=2)
    state: dict[str, Any] = {}
    assert p.decide(state, "a", 100.0, 1.5, THR) == "warning"
    assert p.decide(state, "a", 90.0, 1.5, THR) is None  # late, same episode
    assert state["a"] == {"ts": 100.0, "level": 0}
    assert p.decide(state, "a", 95.0, 2.5, THR) == "critical"  # late, but an escalation
    assert state["a"] == {"ts": 100.0, "level": 1}
    assert p.decide(state, "a", 120.0, 2.5, THR) is None  # cooldown runs from the newest


def test_a_late_window_of_an_older_episode_alerts_but_keeps_the_newest_state() -> None:
    p = AlertPolicy(cooldown_s=30)
    state: dict[str, Any] = {}
    assert p.decide(state, "a", 100.0, 1.5, THR) == "warning"
    assert p.decide(state, "a", 50.0, 1.5, THR) == "warning"  # 50 s earlier: its own episode
    assert state["a"] == {"ts": 100.0, "level": 0}
    assert p.decide(state, "a", 110.0, 1.5, THR) is None
