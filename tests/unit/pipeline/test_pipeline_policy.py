"""Alert policy: episodes (start once, rate-limited updates, immediate update on a priority
rise, end by count and by time, deterministic ids, re-processing changes nothing) and the
``per_window`` mode (per-device cooldown, severity rise, deterministic ids)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import PipelineConfigError
from pipeline.policy import PRIORITY_OF_SEVERITY, SEVERITIES, AlertPolicy

THR = 1.0
V = "v1"


class Device:
    """One device's windows through :meth:`AlertPolicy.step`, as the processor runs them."""

    def __init__(self, policy: AlertPolicy, device_id: str = "a") -> None:
        self.policy, self.device_id = policy, device_id
        self.state: dict[str, Any] = {}
        self.records: list[dict[str, Any]] = []
        self.seq = 0

    def window(self, ts: float, score: float, seq: int | None = None) -> list[str]:
        """Feed one window (score > THR is anomalous); returns the phases it emitted."""
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        new, events = self.policy.step(
            self.state.get(self.device_id), self.device_id, seq, ts, score, THR, score > THR, V
        )
        if new is not None:
            self.state[self.device_id] = new
        out = [
            self.policy.episode_record(
                self.device_id,
                phase,
                ep,
                seq=seq,
                ts=ts,
                score=score,
                threshold=THR,
                model_version=V,
                detected_at=0.0,
            )
            for phase, ep in events
        ]
        self.records += out
        return [r["phase"] for r in out]


def _policy(**kw: Any) -> AlertPolicy:
    return AlertPolicy(
        **{"update_interval_s": 10.0, "end_after_normal": 3, "end_after_s": 60.0, **kw}
    )


def test_an_episode_starts_once_and_updates_at_most_once_per_interval() -> None:
    d = Device(_policy())
    phases = [d.window(100.0 + i, 1.5) for i in range(25)]  # 25 anomalous windows, 1 s apart
    assert phases[0] == ["start"]
    assert [i for i, p in enumerate(phases) if p] == [0, 10, 20]  # updates every 10 s
    assert [p for p in phases if p] == [["start"], ["update"], ["update"]]
    start, upd, _ = d.records
    assert start["episode_id"] == upd["episode_id"] == AlertPolicy.episode_id("a", 0, V)
    assert (upd["first_ts"], upd["last_ts"], upd["anomalous_windows"]) == (100.0, 110.0, 11)
    assert (start["kind"], start["condition"], start["priority"]) == (
        "physiological",
        "anomalous_beats",
        "medium",
    )


def test_a_priority_rise_updates_at_once_and_a_fall_does_not() -> None:
    d = Device(_policy(critical_ratio=2))
    assert d.window(100.0, 1.5) == ["start"]
    assert d.window(101.0, 2.5) == ["update"]  # warning -> critical: inside the interval
    assert d.records[-1]["priority"] == "high" and d.records[-1]["peak_score"] == 2.5
    assert d.window(102.0, 3.0) == []  # same priority
    assert d.window(103.0, 1.5) == []  # lower: the episode stays high
    assert d.window(111.0, 1.5) == ["update"]
    assert d.records[-1]["priority"] == "high" and d.records[-1]["peak_score"] == 3.0


def test_consecutive_normal_windows_end_it() -> None:
    d = Device(_policy(end_after_normal=3))
    assert d.window(100.0, 1.5) == ["start"]
    assert [d.window(101.0 + i, 0.5) for i in range(2)] == [[], []]
    assert d.window(103.0, 1.5) == []  # an anomaly resets the run
    assert [d.window(104.0 + i, 0.5) for i in range(3)] == [[], [], ["end"]]
    end = d.records[-1]
    assert (end["windows_seen"], end["anomalous_windows"], end["last_ts"]) == (7, 2, 103.0)
    assert end["episode_id"] == d.records[0]["episode_id"]
    assert d.window(110.0, 0.5) == []
    assert d.window(111.0, 1.5) == ["start"]  # a new episode, a new id
    assert d.records[-1]["episode_id"] == AlertPolicy.episode_id("a", 8, V)


def test_a_quiet_gap_ends_it_when_the_next_window_arrives() -> None:
    d = Device(_policy(end_after_normal=100, end_after_s=60.0))
    assert d.window(100.0, 1.5) == ["start"]
    assert d.window(159.0, 0.5) == []
    assert d.window(160.0, 0.5) == ["end"]  # 60 s after the last anomalous window
    d2 = Device(_policy(end_after_s=60.0))
    assert d2.window(100.0, 1.5) == ["start"]
    assert d2.window(200.0, 1.5) == ["end", "start"]  # the old one ended, a new one began
    old_end, new_start = d2.records[1:]
    assert old_end["episode_id"] != new_start["episode_id"]
    assert old_end["alert_id"] != new_start["alert_id"]  # same window, other phase


def test_expire_is_the_hook_for_a_silent_device() -> None:
    p = _policy(end_after_s=60.0)
    d = Device(p)
    d.window(100.0, 1.5)
    assert p.expire(d.state["a"], 150.0) == (None, [])
    closed, [(phase, ep)] = p.expire(d.state["a"], 160.0)
    assert phase == "end" and ep["episode_id"] == d.records[0]["episode_id"]
    assert closed == {"open": False, "seen_ts": 100.0, "seen_seq": 0}
    assert p.expire(closed, 1000.0) == (None, [])


def test_re_processed_windows_yield_the_same_ids_and_no_second_start() -> None:
    windows = [(100.0 + i, 1.5 if i < 12 else 0.5) for i in range(20)]
    a, b = Device(_policy()), Device(_policy())
    for ts, score in windows:
        a.window(ts, score)
    for ts, score in windows:  # from scratch (a new consumer group): the same records
        b.window(ts, score)
    assert [r["alert_id"] for r in a.records] == [r["alert_id"] for r in b.records]
    assert [r["phase"] for r in a.records] == ["start", "update", "end"]
    # Re-processing with the live state (a crash before the commit): nothing again.
    before = len(a.records)
    for seq, (ts, score) in enumerate(windows):
        assert a.window(ts, score, seq=seq) == []
    assert len(a.records) == before


def test_only_windows_with_episode_states_are_read_as_such() -> None:
    p = _policy()
    legacy = {"ts": 100.0, "level": 0}  # a per_window cooldown state (mode switched)
    new, [(phase, _)] = p.step(legacy, "a", 5, 101.0, 1.5, THR, True, V)
    assert phase == "start" and new is not None and new["open"]
    assert p.step(None, "a", 6, 102.0, 0.5, THR, False, V) == (None, [])


def test_priority_mapping_is_documented_and_complete() -> None:
    assert PRIORITY_OF_SEVERITY == {"warning": "medium", "critical": "high"}
    assert set(PRIORITY_OF_SEVERITY) == set(SEVERITIES)


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
    [
        ({"cooldown_s": -1}, "cooldown_s"),
        ({"critical_ratio": 1.0}, "critical_ratio"),
        ({"mode": "sometimes"}, "alerts.mode"),
        ({"update_interval_s": -1}, "alerts.update_interval_s"),
        ({"end_after_normal": 0}, "alerts.end_after_normal"),
        ({"end_after_normal": True}, "alerts.end_after_normal"),
        ({"end_after_s": 0}, "alerts.end_after_s"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], key: str) -> None:
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
