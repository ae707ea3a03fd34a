"""``fold_episodes`` / ``fold_alerts``: the alert policy's state implied by the alerts already
in the topic, and that a worker restored from it goes on without a second ``start``."""

from __future__ import annotations

from typing import Any

from pipeline.alert_state import fold_alerts, fold_episodes, merge_restored
from pipeline.policy import SEVERITIES, AlertPolicy
from tests.unit.pipeline.test_pipeline_policy import Device

POLICY = AlertPolicy(update_interval_s=10.0, end_after_normal=3, end_after_s=60.0)


def _run(windows: list[tuple[int, float, float]], state: dict[str, Any]) -> list[dict[str, Any]]:
    """Device ``a``'s (seq, ts, score) windows through the policy; the records emitted."""
    device = Device(POLICY)
    device.state = state
    for seq, ts, score in windows:
        device.window(ts, score, seq)
    return device.records


#: 15 anomalous windows (start, updates at 10 s), then 5 normal ones (end after 3).
WINDOWS = [(i, 100.0 + i, 1.5 if i < 15 else 0.5) for i in range(20)]


def test_a_restored_open_episode_goes_on_without_a_second_start() -> None:
    live: dict[str, Any] = {}
    before_crash = _run(WINDOWS[:12], live)
    assert [r["phase"] for r in before_crash] == ["start", "update"]
    restored = fold_episodes(reversed(before_crash))  # order does not matter
    assert restored["a"]["open"] and restored["a"]["episode_id"] == before_crash[0]["episode_id"]
    # The new owner re-processes from the last committed offset (here: window 5) on.
    after = _run(WINDOWS[5:], restored)
    assert [r["phase"] for r in after] == ["end"]
    assert after[0]["episode_id"] == before_crash[0]["episode_id"]
    # What the live worker would have said, but for the counts it could not know.
    assert after[0]["alert_id"] == _run(WINDOWS[12:], live)[0]["alert_id"]


def test_an_ended_episode_is_not_reopened_by_re_processing() -> None:
    records = _run(WINDOWS, {})
    assert [r["phase"] for r in records] == ["start", "update", "end"]
    restored = fold_episodes(records)
    assert restored == {"a": {"open": False, "seen_ts": 117.0, "seen_seq": 17}}
    assert _run(WINDOWS, restored) == []  # everything up to the end: already said
    assert [r["phase"] for r in _run([(30, 130.0, 1.5)], restored)] == ["start"]


def test_end_and_start_of_the_same_window_fold_to_the_new_episode() -> None:
    records = _run([(0, 100.0, 1.5), (1, 200.0, 1.5)], {})
    assert [r["phase"] for r in records] == ["start", "end", "start"]
    state = fold_episodes(reversed(records))
    assert state["a"]["open"] and state["a"]["episode_id"] == records[2]["episode_id"]


def test_fold_episodes_skips_per_window_alerts_and_junk() -> None:
    per_window = {"device_id": "b", "ts": 1.0, "severity": "warning", "seq": 1}
    junk = [{"device_id": "c", "phase": "start"}, {"phase": "bogus", "device_id": "d"}]
    assert fold_episodes([per_window, *junk]) == {}


def test_merge_keeps_the_newer_of_live_and_restored() -> None:
    state: dict[str, Any] = {"a": {"open": False, "seen_ts": 50.0, "seen_seq": 5}}
    state["b"] = {"open": False, "seen_ts": 500.0, "seen_seq": 5}
    restored = {
        "a": {"open": False, "seen_ts": 60.0, "seen_seq": 6},
        "b": {"open": False, "seen_ts": 400.0, "seen_seq": 4},
        "c": {"open": False, "seen_ts": 1.0, "seen_seq": 1},
    }
    merge_restored(state, restored, episodes=True)
    assert {d: e["seen_ts"] for d, e in state.items()} == {"a": 60.0, "b": 500.0, "c": 1.0}


def _alert(device: str, ts: float, severity: str = "warning") -> dict[str, object]:
    return {"device_id": device, "ts": ts, "severity": severity, "seq": int(ts)}


def test_per_window_newest_alert_per_device_and_the_highest_level_of_its_episode() -> None:
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
    policy = AlertPolicy(cooldown_s=30.0, mode="per_window")
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
