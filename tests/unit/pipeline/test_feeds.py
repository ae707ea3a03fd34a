"""Stale-feed technical alerts and the device view, in-process: ``FeedWatch`` on a fake clock,
driven through ``WindowProcessor`` (the engines' batch step and timer step) with a fake detector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from pipeline.alert_state import fold_episodes, fold_stale
from pipeline.devices import device_view
from pipeline.errors import PipelineConfigError
from pipeline.feeds import FeedWatch
from pipeline.metrics import create_metrics
from pipeline.policy import AlertPolicy
from pipeline.processor import InRecord, WindowProcessor
from pipeline.settings import WorkerSettings
from tests.bad_messages import window_doc
from tests.unit.pipeline.test_pipeline_processor import TOPICS, FakeArtifact, FakeDetector

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "pipeline" / "schemas" / "alert.schema.json").read_text()
)
STALE_AFTER = 10.0


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Worker:
    """One worker process's processor and alert state, fed window by window."""

    def __init__(self, clock: Clock, stale_after_s: float = STALE_AFTER) -> None:
        self.clock = clock
        self.metrics = create_metrics()
        self.proc = WindowProcessor(
            FakeArtifact(FakeDetector()),  # type: ignore[arg-type]
            self.metrics,
            TOPICS,
            AlertPolicy(),
            64 * 1024,
            clock=clock,
            feeds=FeedWatch(stale_after_s, clock=clock),
        )
        self.state: dict[str, Any] = {}
        self.proc.alert_state = self.state

    def batch(self, windows: list[tuple[str, int, float]], partition: int = 0) -> list[dict]:
        """(device, seq, level) windows in one batch; the alert records it emits."""
        records = [
            InRecord(
                "w",
                partition,
                i,
                d.encode(),
                json.dumps(window_doc(d, seq, ts=100.0 + seq, samples=[lvl] * 140)).encode(),
            )
            for i, (d, seq, lvl) in enumerate(windows)
        ]
        result = self.proc.compute(records)
        return [orjson.loads(r.value) for r in self.proc.alerts(result, self.state)]

    def tick(self, lagging: set[int] | None = None) -> list[dict]:
        return [orjson.loads(r.value) for r in self.proc.stale_alerts(lagging or set())]

    def gauge(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


def _stale(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["device_id"], r["phase"]) for r in records if r["condition"] == "feed_stale"]


def test_a_silent_device_gets_one_start_and_its_next_window_ends_it() -> None:
    clock = Clock()
    w = Worker(clock)
    assert w.batch([("a", 0, 0.1), ("b", 0, 0.1)]) == []
    clock.now += STALE_AFTER - 0.5
    w.batch([("b", 1, 0.1)])
    assert w.tick() == []  # a: 9.5 s silent, not yet
    clock.now += 1.0
    starts = w.tick()
    assert _stale(starts) == [("a", "start")]
    start = starts[0]
    assert start["kind"] == "technical" and start["priority"] == "medium"
    assert start["seq"] == 0 and start["silent_s"] == pytest.approx(10.5)
    assert w.tick() == []  # one start per silence, however many ticks
    assert w.gauge("ecg_devices_stale") == 1 and w.gauge("ecg_devices_active") == 1
    assert w.gauge("ecg_alert_episodes_open", kind="technical") == 1
    clock.now += 30.0
    w.batch([("b", 2, 0.1)])
    assert w.tick() == []
    ended = w.batch([("a", 1, 0.1)])
    assert _stale(ended) == [("a", "end")]
    end = ended[0]
    assert end["episode_id"] == start["episode_id"] and end["seq"] == 1
    assert end["silent_s"] == pytest.approx(40.5)
    for record in (start, end):
        jsonschema.validate(record, SCHEMA)
    w.tick()
    assert w.gauge("ecg_devices_stale") == 0 and w.gauge("ecg_devices_active") == 2


def test_two_hundred_devices_silent_at_once_give_two_hundred_starts() -> None:
    clock = Clock()
    w = Worker(clock)
    devices = [f"dev-{i:03d}" for i in range(200)]
    w.batch([(d, 0, 0.1) for d in devices])
    clock.now += STALE_AFTER
    starts = w.tick()
    assert sorted(d for d, _ in _stale(starts)) == devices
    assert len({r["episode_id"] for r in starts}) == 200
    clock.now += 5
    assert w.tick() == []


def test_lagging_partitions_are_not_judged() -> None:
    clock = Clock()
    w = Worker(clock)
    w.batch([("a", 0, 0.1)], partition=3)
    clock.now += 60
    assert w.tick(lagging={3}) == []  # its newer windows may wait in the topic
    assert _stale(w.tick(lagging={1})) == [("a", "start")]


def test_a_device_only_just_taken_over_is_not_stale() -> None:
    """A new owner knows a device only from a window it consumed: no storm after a restart."""
    clock = Clock()
    old = Worker(clock)
    old.batch([(f"d{i}", 0, 0.1) for i in range(50)])
    clock.now += 120  # the worker was down for two minutes; the devices kept sending
    new = Worker(clock)
    assert new.tick() == []
    new.batch([(f"d{i}", 1, 0.1) for i in range(50)])  # the backlog
    clock.now += STALE_AFTER - 1
    assert new.tick() == []


def test_a_restored_stale_episode_is_not_started_again_and_ends_once() -> None:
    clock = Clock()
    old = Worker(clock)
    old.batch([("a", 0, 0.1), ("b", 0, 0.1)])
    clock.now += STALE_AFTER
    starts = old.tick()
    assert len(starts) == 2
    clock.now += 5  # SIGKILL; the new owner restores from the alerts topic
    new = Worker(clock)
    new.proc.feeds.restore(fold_stale(reversed(starts)))
    assert fold_episodes(starts) == {}  # technical records are no physiological state
    clock.now += 60
    assert new.tick() == []
    ended = new.batch([("a", 1, 0.1)])
    assert _stale(ended) == [("a", "end")]
    assert (
        ended[0]["episode_id"] == starts[[r["device_id"] for r in starts].index("a")]["episode_id"]
    )
    # b is still silent: known stale (restored), no second start
    assert new.tick() == []
    assert new.batch([("a", 2, 0.1)]) == []


def test_an_ended_stale_episode_is_not_restored_open() -> None:
    clock = Clock()
    w = Worker(clock)
    w.batch([("a", 0, 0.1)])
    clock.now += STALE_AFTER
    records = w.tick() + w.batch([("a", 1, 0.1)])
    assert [r["phase"] for r in records] == ["start", "end"]
    assert fold_stale(reversed(records)) == {}


def test_revoked_partitions_devices_are_forgotten() -> None:
    clock = Clock()
    w = Worker(clock)
    w.batch([("a", 0, 0.1)], partition=1)
    w.batch([("b", 0, 0.1)], partition=2)
    w.proc.feeds.revoke([1])
    clock.now += STALE_AFTER
    assert _stale(w.tick()) == [("b", "start")]


def test_stale_alerts_off_at_zero_but_devices_still_tracked() -> None:
    clock = Clock()
    w = Worker(clock, stale_after_s=0)
    w.batch([("a", 0, 0.1)])
    clock.now += 3600
    assert w.tick() == []
    assert w.gauge("ecg_devices_active") == 1


def test_a_dead_lettered_window_proves_the_feed_alive() -> None:
    clock = Clock()
    w = Worker(clock)
    w.batch([("a", 0, 0.1)])
    clock.now += STALE_AFTER - 1
    w.batch([("a", 1, -7.0)])  # flat: dead-lettered, but the device is sending
    clock.now += 2
    assert w.tick() == []


@pytest.mark.parametrize("value", [-1, -0.5, 86401, True])
def test_stale_after_s_is_checked(value: Any) -> None:
    with pytest.raises(PipelineConfigError, match="alerts.stale_after_s"):
        WorkerSettings(stale_after_s=value)


def test_device_view_lists_owned_devices_with_their_open_episodes() -> None:
    clock = Clock()
    w = Worker(clock)
    w.batch([("a", 0, 0.9), ("b", 0, 0.1)])  # a: anomalous (fake score 0.9 > 0.5)
    clock.now += 3
    w.batch([("a", 1, 0.9)])
    clock.now += STALE_AFTER
    w.batch([("a", 2, 0.9)])
    w.tick()  # b goes stale
    view = json.loads(orjson.dumps(device_view(w.proc.feeds, w.state)))
    assert view["active"] == 1 and view["stale"] == 1
    a, b = view["devices"]
    assert a["device_id"] == "a" and a["status"] == "active" and a["last_seq"] == 2
    assert a["last_anomaly"] is True and a["last_score"] == pytest.approx(0.9)
    (episode,) = a["episodes"]
    assert episode["kind"] == "physiological" and episode["condition"] == "anomalous_beats"
    assert episode["episode_id"] == w.state["a"]["episode_id"]
    assert episode["since"] == 100.0  # its first anomalous window's ts
    assert b["status"] == "stale" and b["silent_s"] == pytest.approx(STALE_AFTER + 3)
    assert [e["condition"] for e in b["episodes"]] == ["feed_stale"]


def test_a_restore_that_completes_after_the_device_sent_ends_its_episode_at_once() -> None:
    """Faust does not hold batches back for the restore: a device may send first."""
    clock = Clock()
    old = Worker(clock)
    old.batch([("a", 0, 0.1), ("b", 0, 0.1)])
    clock.now += STALE_AFTER
    starts = old.tick()
    new = Worker(clock)
    clock.now += 3
    assert new.batch([("a", 1, 0.1)]) == []  # before the restore: nothing known yet
    ended = [orjson.loads(r.value) for r in new.proc.restore_stale(fold_stale(starts))]
    assert _stale(ended) == [("a", "end")]
    assert ended[0]["silent_s"] == pytest.approx(13.0)
    assert new.batch([("a", 2, 0.1)]) == []  # ended once
    assert _stale(new.batch([("b", 1, 0.1)])) == [("b", "end")]  # b: its next window ends it


def test_a_device_silent_since_before_the_assignment_is_seeded_and_flagged() -> None:
    clock = Clock()
    w = Worker(clock)
    sent = clock.now - 3.0  # its last window, processed by the previous owner
    assert w.proc.feeds.seed("gone", 0, sent, 7, 100.0) is True
    assert w.proc.feeds.seed("gone", 0, sent, 7, 100.0) is False  # once
    clock.now += STALE_AFTER - 3.5
    assert w.tick() == []
    clock.now += 1.0
    starts = w.tick()
    assert _stale(starts) == [("gone", "start")]
    assert starts[0]["seq"] == 7 and starts[0]["score"] is None
    assert starts[0]["silent_s"] == pytest.approx(STALE_AFTER + 0.5)


def test_a_seeded_device_keeps_its_restored_stale_episode() -> None:
    clock = Clock()
    old = Worker(clock)
    old.batch([("a", 0, 0.1)])
    clock.now += STALE_AFTER
    starts = old.tick()
    new = Worker(clock)
    assert new.proc.restore_stale(fold_stale(starts)) == []
    new.proc.feeds.seed("a", 0, clock.now - STALE_AFTER, 0, 100.0)
    clock.now += 60
    assert new.tick() == []  # no second start
    assert _stale(new.batch([("a", 1, 0.1)])) == [("a", "end")]


def test_seed_feeds_decodes_the_newest_windows() -> None:
    clock = Clock()
    w = Worker(clock)
    good = InRecord(
        "w", 3, 5, b"d1", json.dumps(window_doc("d1", 41, ts=100.0, samples=[0.1] * 140)).encode()
    )
    bad = InRecord("w", 3, 6, b"d2", b"{not json")
    assert w.proc.seed_feeds([(good, clock.now - 1), (bad, clock.now - 1)]) == 1
    ((device, feed),) = w.proc.feeds.snapshot()
    assert (device, feed.partition, feed.seq) == ("d1", 3, 41)
