"""Alert episodes on the real broker, both engines: one ``start``, rate-limited ``update``s and
one ``end``; and their state survives a SIGKILL (no second ``start``, the ``end`` still comes)
and a worker that re-processes everything (the batch engine rebuilds open episodes from the
alerts topic on assignment; the Faust engine restores its table from the changelog).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka import KafkaProducer

from ecgwatch.commands.alerts import format_record
from pipeline.codec import encode_window_json
from tests.integration.conftest import SeedModel
from tests.integration.stream import TopicReader, WorkerPool, new_topics

pytestmark = [pytest.mark.integration, pytest.mark.serial]

DEVICE = "dev-r"
EPISODES_ENV = {
    "ECGWATCH_ALERTS__UPDATE_INTERVAL_S": "10",
    "ECGWATCH_ALERTS__END_AFTER_NORMAL": "3",
    "ECGWATCH_ALERTS__END_AFTER_S": "60",
    # Physiological episodes only: the device stops sending at the end of each test, and a
    # slow run must not see its feed_stale start (tests/integration/test_feed_stale.py).
    "ECGWATCH_ALERTS__STALE_AFTER_S": "0",
}
#: Faust reads these from the environment (a killed member leaves the group sooner).
FAST_FAILOVER = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}
ENGINES = ["batch", "faust"]


@pytest.fixture(scope="module")
def beats(seed_model: SeedModel, ecg_arrays: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A clearly anomalous and a clearly normal beat (both warning-level or normal)."""
    from detector import Artifact

    art = Artifact.load(seed_model.artifact)
    x = np.asarray(ecg_arrays[0][:400], dtype=np.float32)
    scores = art.score(x)
    thr = art.threshold.value
    # Anomalous but below 2 x threshold: every window the same (warning) priority, so the
    # updates follow the interval only.
    warn = np.flatnonzero((scores > 1.2 * thr) & (scores < 1.8 * thr))
    assert len(warn), "no warning-level beat in the first 400"
    normal = int(np.argmin(scores))
    assert scores[normal] < thr
    return x[int(warn[0])], x[normal]


def _send(bootstrap: str, topic: str, items: list[tuple[int, float, np.ndarray]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for seq, ts, window in items:
            value = encode_window_json(DEVICE, seq, ts, window.tolist())
            producer.send(topic, key=DEVICE.encode(), value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def _run(beats: tuple[np.ndarray, np.ndarray], seqs: range, anomalous_below: int) -> Iterator:
    bad, good = beats
    for seq in seqs:
        yield seq, 1000.0 + seq, bad if seq < anomalous_below else good


def _phases(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(phase, seq) of each distinct record (duplicates after a crash share their alert_id)."""
    seen: dict[str, tuple[str, int]] = {}
    for r in records:
        seen.setdefault(r["alert_id"], (r["phase"], r["seq"]))
    return sorted(seen.values(), key=lambda p: (p[1], p[0] != "end"))


@pytest.mark.parametrize("engine", ENGINES)
def test_an_anomalous_run_gives_one_start_rate_limited_updates_and_one_end(
    engine: str, kafka_bootstrap: str, beats: tuple, worker_pool: WorkerPool
) -> None:
    topics = new_topics(kafka_bootstrap, f"it.episodes.{engine}", partitions=2)
    env = {"ECGWATCH_WORKER__ENGINE": engine, **EPISODES_ENV}
    worker = worker_pool.start(topics, env=env)
    # 25 anomalous windows 1 s apart (seq 0-24), then 5 normal ones (seq 25-29).
    _send(kafka_bootstrap, topics.windows, list(_run(beats, range(30), 25)))
    with TopicReader(kafka_bootstrap, topics.alerts) as reader:
        records = reader.until(
            lambda rs: any(r["phase"] == "end" for r in rs), 90, "an end", worker.log_tail
        )
        reader.poll(1000)  # nothing more may come
        records = reader.records
    assert _phases(records) == [("start", 0), ("update", 10), ("update", 20), ("end", 27)]
    assert len(records) == 4, records
    assert len({r["episode_id"] for r in records}) == 1
    end = records[-1]
    assert (end["anomalous_windows"], end["windows_seen"], end["first_ts"], end["last_ts"]) == (
        25,
        28,
        1000.0,
        1024.0,
    )
    assert all(r["priority"] == "medium" and r["kind"] == "physiological" for r in records)
    assert all(r["schema_version"] == 2 and r["condition"] == "anomalous_beats" for r in records)
    assert "START" in format_record(records[0]) and DEVICE in format_record(records[0])
    worker.assert_running()


#: Faust's restart bug (docs/configuration.md, "Engines"): now and then a Faust worker restarted
#: after a kill -9 consumes nothing (or skips offsets) after its seek to the committed
#: offsets, so no ``end`` comes. Kept as an expected failure for that engine only, so that it
#: is still run and reported; the batch engine must pass.
FAUST_RESTART_BUG = pytest.mark.xfail(
    reason="Faust restart bug: the restarted Faust worker sometimes consumes nothing after its "
    "seek to committed offsets (1 of 3 runs on 2026-12-03, alone); docs/configuration.md",
    strict=False,
)


@pytest.mark.parametrize("engine", ["batch", pytest.param("faust", marks=FAUST_RESTART_BUG)])
def test_sigkill_mid_episode_gives_no_second_start_and_the_end_still_comes(
    engine: str, kafka_bootstrap: str, beats: tuple, worker_pool: WorkerPool
) -> None:
    topics = new_topics(kafka_bootstrap, f"it.episodes.kill.{engine}", partitions=2)
    env = {"ECGWATCH_WORKER__ENGINE": engine, **EPISODES_ENV, **FAST_FAILOVER}
    worker = worker_pool.start(topics, env=env)
    with TopicReader(kafka_bootstrap, topics.alerts) as reader:
        _send(kafka_bootstrap, topics.windows, list(_run(beats, range(15), 40)))
        reader.until(
            lambda rs: any(r["phase"] == "update" for r in rs), 90, "an update", worker.log_tail
        )
        worker.kill9()  # mid-episode: open, nothing more committed
        _send(kafka_bootstrap, topics.windows, list(_run(beats, range(15, 45), 40)))
        worker.start().wait_ready()  # same group and data dir: resumes from committed offsets
        records = reader.until(
            lambda rs: any(r["phase"] == "end" for r in rs), 120, "an end", worker.log_tail
        )
        reader.poll(1000)
        records = reader.records
    # Anomalous 0-39 (updates every 10 s of window time), normal 40-44 (end after 3).
    assert _phases(records) == [
        ("start", 0),
        ("update", 10),
        ("update", 20),
        ("update", 30),
        ("end", 42),
    ], records
    assert len({r["episode_id"] for r in records}) == 1
    worker.assert_running()


def test_a_worker_reprocessing_everything_goes_on_from_the_alerts_topic(
    kafka_bootstrap: str, beats: tuple, tmp_path: Path, seed_model: SeedModel
) -> None:
    """Batch engine: worker 2 (a new group) re-reads window 0, which opened an episode; with
    the state rebuilt from the alerts topic it sends no second ``start`` for it."""
    topics = new_topics(kafka_bootstrap, "restore", partitions=2)
    bad, _ = beats
    # Updates at most every 30 s: 1010 s is counted, not sent.
    env = {
        "ECGWATCH_WORKER__ENGINE": "batch",
        **EPISODES_ENV,
        "ECGWATCH_ALERTS__UPDATE_INTERVAL_S": "30",
    }
    pool = WorkerPool(seed_model.registry, kafka_bootstrap, tmp_path)
    with (
        TopicReader(kafka_bootstrap, topics.scores) as scores,
        TopicReader(kafka_bootstrap, topics.alerts) as alerts,
    ):
        try:
            first = pool.start(topics, env=env)
            _send(kafka_bootstrap, topics.windows, [(0, 1000.0, bad)])
            alerts.until(lambda r: len(r) >= 1, 60, "first alert", first.log_tail)
            assert first.stop() == 0

            # 1010 s: the same episode; 1100 s: 90 s after its last anomaly, so it ends and a
            # new one starts.
            _send(kafka_bootstrap, topics.windows, [(1, 1010.0, bad), (2, 1100.0, bad)])
            second = pool.start(topics, env=env)  # new group: re-reads seq 0 as well
            scores.until(lambda r: len(r) >= 4, 60, "4 score records", second.log_tail)
            alerts.until(lambda r: len(r) >= 3, 60, "3 alert records", second.log_tail)
            second.stop()
            assert second.log_path is not None
            log = second.log_path.read_text()
        finally:
            pool.close()
        got = [(a["phase"], a["seq"]) for a in alerts.drain()]
    # Without the restored state, seq 0 would start the episode a second time (same ids).
    assert got == [("start", 0), ("end", 2), ("start", 2)], log
    assert "alert state: 1 devices restored from 1 alerts" in log, log
    assert "(1 open episodes, 0 stale feeds)" in log, log
