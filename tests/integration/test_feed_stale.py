"""Stale-feed technical alerts on the real broker, both engines: a device that goes silent gets
one ``feed_stale`` start within ``alerts.stale_after_s`` + 2 s and its end within 2 s of its next
window; 200 devices going silent at once give 200 starts and no duplicates (and ``/devices``
and the gauges say so); a SIGKILL and restart neither repeats an open stale episode's start nor
raises one for the devices that kept sending meanwhile.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

import pytest
from kafka import KafkaProducer

from pipeline.codec import encode_window_json
from tests.integration import test_alert_state_restore as episodes
from tests.integration.stream import TopicReader, WorkerPool, new_topics, wait_until

#: The same anomalous/normal beat pair as the physiological episode tests (a module fixture).
beats = episodes.beats
FAST_FAILOVER = episodes.FAST_FAILOVER

pytestmark = pytest.mark.integration

ENGINES = ["batch", "faust"]
STALE_AFTER_S = 4.0
#: What the issue allows: start within stale_after_s + 2 s, end within 2 s of the next window.
SLACK_S = 2.0


def _env(engine: str) -> dict[str, str]:
    return {
        "ECGWATCH_WORKER__ENGINE": engine,
        "ECGWATCH_ALERTS__STALE_AFTER_S": str(STALE_AFTER_S),
        **FAST_FAILOVER,
    }


def _send(producer: KafkaProducer, topic: str, devices: list[str], seq: int, beat: Any) -> float:
    """One window per device; returns the wall time the last one was acknowledged."""
    for d in devices:
        producer.send(topic, key=d.encode(), value=encode_window_json(d, seq, 1000.0 + seq, beat))
    producer.flush(timeout=30)
    return time.time()


def _stale(records: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("condition") == "feed_stale" and r["phase"] == phase]


def _devices(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


@pytest.mark.parametrize("engine", ENGINES)
def test_two_hundred_silent_devices_get_one_start_each_and_their_next_window_ends_it(
    engine: str,
    kafka_bootstrap: str,
    beats: tuple,
    worker_pool: WorkerPool,
) -> None:
    topics = new_topics(kafka_bootstrap, f"it.stale.{engine}", partitions=4)
    worker = worker_pool.start(topics, env=_env(engine))
    normal = beats[1].tolist()
    devices = [f"dev-{i:03d}" for i in range(200)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    try:
        with TopicReader(kafka_bootstrap, topics.alerts) as alerts:
            sent = _send(producer, topics.windows, devices, 0, normal)
            records = alerts.until(
                lambda rs: len(_stale(rs, "start")) >= 200, 60, "200 stale starts", worker.log_tail
            )
            starts = _stale(records, "start")
            late = max(r["detected_at"] for r in starts) - sent
            assert late <= STALE_AFTER_S + SLACK_S, f"last start {late:.2f} s after the send"
            assert min(r["detected_at"] for r in starts) - sent >= STALE_AFTER_S - 0.5
            view = _devices(worker.url("/devices"))
            assert (view["stale"], view["active"]) == (200, 0), view
            assert all(d["episodes"][0]["condition"] == "feed_stale" for d in view["devices"])
            assert worker.metric("ecg_devices_stale") == 200
            assert worker.metric("ecg_alert_episodes_open", kind="technical") == 200
            table = subprocess.run(
                [sys.executable, "-m", "ecgwatch", "devices", "--stale-only", worker.url("")],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            assert "200 devices (0 active, 200 stale) from 1 workers" in table, table
            assert "dev-199" in table and "technical" in table
            time.sleep(STALE_AFTER_S)  # still silent: nothing more
            alerts.poll(500)
            assert len(_stale(alerts.records, "start")) == 200

            resumed = _send(producer, topics.windows, devices, 1, normal)
            records = alerts.until(
                lambda rs: len(_stale(rs, "end")) >= 200, 30, "200 stale ends", worker.log_tail
            )
            ends = _stale(records, "end")
            assert max(r["detected_at"] for r in ends) - resumed <= SLACK_S
            time.sleep(1.0)
            alerts.poll(500)
            records = alerts.records
    finally:
        producer.close()
    starts, ends = _stale(records, "start"), _stale(records, "end")
    assert len(starts) == len(ends) == 200, "a duplicate start or end"
    assert sorted(r["device_id"] for r in starts) == devices
    by_device = {r["device_id"]: r["episode_id"] for r in starts}
    assert all(by_device[r["device_id"]] == r["episode_id"] for r in ends)
    assert all(r["seq"] == 0 for r in starts) and all(r["seq"] == 1 for r in ends)
    assert all(r["kind"] == "technical" and r["priority"] == "medium" for r in records)
    assert worker.metric("ecg_devices_active") == 200
    worker.assert_running()


class _Feeder(threading.Thread):
    """Devices sending a window every ``period_s`` until stopped (they never go silent)."""

    def __init__(
        self, bootstrap: str, topic: str, devices: list[str], beat: Any, period_s: float = 0.5
    ) -> None:
        super().__init__(daemon=True)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        self.topic, self.devices, self.beat = topic, devices, beat
        self.period_s = period_s
        self.seq = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            _send(self.producer, self.topic, self.devices, self.seq, self.beat)
            self.seq += 1
            self.stop_event.wait(self.period_s)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)
        self.producer.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_sigkill_and_restart_repeat_no_stale_start_and_raise_no_storm(
    engine: str,
    kafka_bootstrap: str,
    beats: tuple,
    worker_pool: WorkerPool,
) -> None:
    topics = new_topics(kafka_bootstrap, f"it.stale.kill.{engine}", partitions=4)
    worker = worker_pool.start(topics, env=_env(engine))
    normal = beats[1].tolist()
    alive = [f"alive-{i}" for i in range(20)]
    feeder = _Feeder(kafka_bootstrap, topics.windows, alive, normal)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        with TopicReader(kafka_bootstrap, topics.alerts) as alerts:
            feeder.start()
            _send(producer, topics.windows, ["silent"], 0, normal)
            alerts.until(
                lambda rs: len(_stale(rs, "start")) >= 1, 30, "the silent start", worker.log_tail
            )
            worker.kill9()  # with the stale episode open; the other devices keep sending
            time.sleep(STALE_AFTER_S + 2)  # down for longer than stale_after_s
            worker.start().wait_ready()
            time.sleep(STALE_AFTER_S + 4)  # the backlog, then time to (wrongly) raise alerts
            alerts.poll(500)
            assert [r["device_id"] for r in _stale(alerts.records, "start")] == ["silent"], (
                "a storm or a second start after the restart\n" + worker.log_tail()
            )
            _send(producer, topics.windows, ["silent"], 1, normal)
            records = alerts.until(
                lambda rs: len(_stale(rs, "end")) >= 1, 30, "the silent end", worker.log_tail
            )
            time.sleep(1.0)
            alerts.poll(500)
            records = alerts.records
    finally:
        feeder.stop()
        producer.close()
    starts, ends = _stale(records, "start"), _stale(records, "end")
    assert [r["device_id"] for r in starts] == ["silent"]
    assert [r["device_id"] for r in ends] == ["silent"], "the end is lost or doubled"
    assert ends[0]["episode_id"] == starts[0]["episode_id"]
    worker.assert_running()


@pytest.mark.parametrize("engine", ENGINES)
def test_one_silent_device_among_busy_ones_is_flagged_in_time(
    engine: str, kafka_bootstrap: str, beats: tuple, worker_pool: WorkerPool
) -> None:
    """A silent device is flagged in time while the other devices of its partitions keep the
    worker busy (800 windows/s), and none of those is. (At this rate lag is often zero at the
    moment it is sampled; the rule that a quickly consumed lag is no backlog is unit-tested in
    tests/unit/pipeline/test_catch_up.py.)"""
    topics = new_topics(kafka_bootstrap, f"it.stale.busy.{engine}", partitions=2)
    worker = worker_pool.start(topics, env=_env(engine))
    normal = beats[1].tolist()
    busy = [f"busy-{i:02d}" for i in range(40)]
    feeder = _Feeder(kafka_bootstrap, topics.windows, busy, normal, period_s=0.05)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        with TopicReader(kafka_bootstrap, topics.alerts) as alerts:
            feeder.start()
            time.sleep(2.0)
            sent = _send(producer, topics.windows, ["quiet"], 0, normal)
            records = alerts.until(
                lambda rs: len(_stale(rs, "start")) >= 1, 30, "the quiet start", worker.log_tail
            )
            late = _stale(records, "start")[0]["detected_at"] - sent
            time.sleep(2.0)
            alerts.poll(500)
            starts = _stale(alerts.records, "start")
            scored = worker.scored()
    finally:
        feeder.stop()
        producer.close()
    assert [r["device_id"] for r in starts] == ["quiet"], "a busy device flagged, or a repeat"
    assert late <= STALE_AFTER_S + SLACK_S, f"the start came {late:.2f} s after the send"
    assert scored > 2000, f"only {scored:.0f} windows scored: the traffic was not busy"
    worker.assert_running()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_device_silent_since_before_a_restart_is_still_flagged(
    engine: str, kafka_bootstrap: str, beats: tuple, worker_pool: WorkerPool
) -> None:
    """Its last window was processed and committed by the previous run: the restarted worker
    learns it from the windows before the committed offset, and flags it."""
    topics = new_topics(kafka_bootstrap, f"it.stale.seed.{engine}", partitions=2)
    worker = worker_pool.start(topics, env=_env(engine))
    normal = beats[1].tolist()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        with TopicReader(kafka_bootstrap, topics.alerts) as alerts:
            sent = _send(producer, topics.windows, ["gone"], 0, normal)
            wait_until(lambda: worker.scored() >= 1, 30, "its window scored", worker)
            assert worker.stop() == 0  # a clean stop commits; then the device stays silent
            worker.start().wait_ready()
            records = alerts.until(
                lambda rs: len(_stale(rs, "start")) >= 1, 40, "the start", worker.log_tail
            )
            start = _stale(records, "start")[0]
            assert start["device_id"] == "gone" and start["seq"] == 0
            assert start["silent_s"] >= STALE_AFTER_S - 0.5
            assert start["detected_at"] - sent >= STALE_AFTER_S - 0.5
            _send(producer, topics.windows, ["gone"], 1, normal)
            alerts.until(lambda rs: len(_stale(rs, "end")) >= 1, 30, "the end", worker.log_tail)
            alerts.poll(500)
            assert len(_stale(alerts.records, "start")) == 1
    finally:
        producer.close()
    assert "feed watch: 1 devices seeded" in (
        worker.log_path.read_text() if worker.log_path else ""
    )
    worker.assert_running()
