"""``fold_alerts``: the alert policy's state implied by the alerts already in the topic."""

from __future__ import annotations

from pipeline.alert_state import fold_alerts
from pipeline.policy import SEVERITIES, AlertPolicy


def _alert(device: str, ts: float, severity: str = "warning") -> dict[str, object]:
    return {"device_id": device, "ts": ts, "severity": severity, "seq": int(ts)}


def test_newest_alert_per_device_and_the_highest_level_of_its_episode() -> None:
    alerts = [
        _alert("a", 100.0, "critical"),  # older episode: its level does not count
        _alert("a", 200.0, "warning"),
        _alert("a", 210.0, "critical"),  # same episode as 220 (cooldown 30)
        _alert("a", 220.0, "warning"),
        _alert("b", 50.0),
    ]
    state = fold_alerts(reversed(alerts), cooldown_s=30.0)  # order does not matter
    crit, warn = SEVERITIES.index("critical"), SEVERITIES.index("warning")
    assert state == {"a": {"ts": 220.0, "level": crit}, "b": {"ts": 50.0, "level": warn}}


def test_restored_state_suppresses_exactly_what_the_live_state_would() -> None:
    policy = AlertPolicy(cooldown_s=30.0)
    state = fold_alerts([_alert("a", 1000.0)], policy.cooldown_s)
    assert policy.decide(state, "a", 1000.0, 1.5, 1.0) is None  # the same window re-processed
    assert policy.decide(state, "a", 1010.0, 1.5, 1.0) is None  # inside the cooldown
    assert policy.decide(state, "a", 1010.0, 5.0, 1.0) == "critical"  # escalation still alerts
    assert policy.decide(state, "a", 1100.0, 1.5, 1.0) == "warning"  # a new episode


def test_records_that_are_not_alerts_are_skipped() -> None:
    junk = [{"device_id": "a"}, {"ts": 1.0, "severity": "warning"}, _alert("a", 5.0, "bogus")]
    assert fold_alerts([*junk, _alert("c", 7.0)], 30.0) == {
        "c": {"ts": 7.0, "level": SEVERITIES.index("warning")}
    }
