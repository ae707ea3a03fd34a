"""The batch engine rebuilds its alert de-dup state from the alerts topic when it starts.

Worker 1 alerts on an anomalous window of device ``dev-r`` (window time 1000 s) and stops.
Worker 2 — a new consumer group, so it re-processes that window like a worker restarted after
a crash before its commit — also gets a second anomaly inside the cooldown (1010 s) and a third
after it (1100 s). With the state restored from the alerts topic, worker 2 raises exactly one
alert (1100 s); with an empty state it would repeat the 1000 s alert.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from pipeline.codec import encode_window_json
from tests.integration.conftest import SeedModel
from tests.integration.stream import TopicReader, WorkerPool, new_topics

pytestmark = pytest.mark.integration

DEVICE = "dev-r"
BATCH_ENV = {"ECGWATCH_WORKER__ENGINE": "batch", "ECGWATCH_ALERTS__COOLDOWN_S": "30"}


def _anomalous_window(seed_model: SeedModel, ecg_arrays: tuple) -> np.ndarray:
    from detector import Artifact

    art = Artifact.load(seed_model.artifact)
    x = np.asarray(ecg_arrays[0][:400], dtype=np.float32)
    scores = art.score(x)
    best = int(np.argmax(scores))
    assert scores[best] > art.threshold.value
    return x[best]


def _send(bootstrap: str, topic: str, window: np.ndarray, items: list[tuple[int, float]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for seq, ts in items:
            value = encode_window_json(DEVICE, seq, ts, window.tolist())
            producer.send(topic, key=DEVICE.encode(), value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def test_restart_does_not_repeat_an_alert_inside_its_cooldown(
    kafka_bootstrap: str, seed_model: SeedModel, ecg_arrays: tuple, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, "restore", partitions=2)
    window = _anomalous_window(seed_model, ecg_arrays)
    pool = WorkerPool(seed_model.registry, kafka_bootstrap, tmp_path)
    with (
        TopicReader(kafka_bootstrap, topics.scores) as scores,
        TopicReader(kafka_bootstrap, topics.alerts) as alerts,
    ):
        try:
            first = pool.start(topics, env=BATCH_ENV)
            _send(kafka_bootstrap, topics.windows, window, [(0, 1000.0)])
            alerts.until(lambda r: len(r) >= 1, 60, "first alert", first.log_tail)
            assert first.stop() == 0

            _send(kafka_bootstrap, topics.windows, window, [(1, 1010.0), (2, 1100.0)])
            second = pool.start(topics, env=BATCH_ENV)  # new group: re-reads seq 0 as well
            scores.until(lambda r: len(r) >= 4, 60, "4 score records", second.log_tail)
            second.stop()
            assert second.log_path is not None
            log = second.log_path.read_text()
        finally:
            pool.close()
        got = sorted((a["seq"], a["ts"]) for a in alerts.drain())
    # Without the restored state, seq 0 would alert a second time (same alert id).
    assert got == [(0, 1000.0), (2, 1100.0)], log
    assert "alert state: 1 devices restored from 1 alerts" in log, log
