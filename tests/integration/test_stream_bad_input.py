"""Malformed messages interleaved with valid windows, on the real broker.

Every bad message must land in the DLQ with its reason, its source topic/partition/offset and
its original bytes; every valid window must still be scored; the worker keeps running; and the
counters on ``/metrics`` match what was sent and rejected.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.codec import DLQ_VALUE_CAP, REJECT_REASONS, SCORING_REASONS, encode_window_json
from pipeline.settings import TopicNames
from tests.bad_messages import BAD_MESSAGES as DECODE_FAILURES
from tests.bad_messages import FLAT_MESSAGES, BadMessage
from tests.integration.conftest import SeedModel
from tests.integration.stream import (
    TopicReader,
    WorkerPool,
    WorkerProcess,
    by_window,
    new_topics,
)

#: Everything the worker must dead-letter: decoding failures and flat windows.
BAD_MESSAGES = DECODE_FAILURES + FLAT_MESSAGES

pytestmark = pytest.mark.integration

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Sent:
    """Where one produced message went."""

    key: bytes
    value: bytes | None
    partition: int
    offset: int


@dataclass
class Run:
    topics: TopicNames
    worker: WorkerProcess
    valid: dict[tuple[str, int], int]  # (device_id, seq) -> row of the test split
    bad: list[tuple[BadMessage, Sent]]
    scores: dict[tuple[str, int], dict[str, Any]]
    dlq: list[dict[str, Any]]
    metrics: Metrics
    started: float


def _produce(
    bootstrap: str, topic: str, items: list[tuple[bytes, bytes | None, Any]]
) -> list[Sent]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2**20)
    try:
        futures = [
            producer.send(topic, key=k, value=v, headers=list(h) or None) for k, v, h in items
        ]
        producer.flush(timeout=30)
        meta = [f.get(timeout=30) for f in futures]
    finally:
        producer.close()
    return [Sent(k, v, m.partition, m.offset) for (k, v, _), m in zip(items, meta, strict=True)]


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, shared_data: Path, module_worker_pool: WorkerPool) -> Run:
    from ecgwatch.cli_common import load_windows

    x, _ = load_windows(str(shared_data))
    topics = new_topics(kafka_bootstrap, "it.bad")
    worker = module_worker_pool.start(topics)
    started = time.time()
    items: list[tuple[bytes, bytes | None, Any]] = []
    valid: dict[tuple[str, int], int] = {}
    row = 0

    def add_valid(headers: tuple[tuple[str, bytes], ...] = ()) -> None:
        nonlocal row
        device, seq = f"dev-ok-{row % 3}", row // 3
        items.append(
            (device.encode(), encode_window_json(device, seq, time.time(), x[row]), headers)
        )
        valid[(device, seq)] = row
        row += 1

    for i, bad in enumerate(BAD_MESSAGES):
        add_valid()
        items.append((f"bad-{i:02d}".encode(), bad.value, bad.headers))
    # The header path: explicit JSON content types are windows like any other.
    add_valid((("content-type", b"application/json"),))
    add_valid((("Content-Type", b"application/json; charset=utf-8"),))
    add_valid()
    sent = _produce(kafka_bootstrap, topics.windows, items)
    bad_sent = [s for s in sent if s.key.startswith(b"bad-")]
    with TopicReader(kafka_bootstrap, topics.scores) as reader:
        scores = reader.until(
            lambda rs: set(valid) <= set(by_window(rs)), 60, "every valid window", worker.log_tail
        )
    with TopicReader(kafka_bootstrap, topics.dlq) as reader:
        dlq = reader.until(
            lambda rs: len(rs) >= len(BAD_MESSAGES), 60, "every bad message", worker.log_tail
        )
    return Run(
        topics,
        worker,
        valid,
        list(zip(BAD_MESSAGES, bad_sent, strict=True)),
        by_window(scores),
        dlq,
        worker.metrics(),
        started,
    )


def test_catalogue_is_varied() -> None:
    assert len({b.name for b in BAD_MESSAGES}) >= 20
    assert len({b.reason for b in BAD_MESSAGES}) >= 10


def test_each_bad_message_is_dead_lettered(run: Run) -> None:
    by_source = {(r["topic"], r["partition"], r["offset"]): r for r in run.dlq}
    assert len(by_source) == len(run.dlq) == len(BAD_MESSAGES), "one DLQ record per bad message"
    for bad, sent in run.bad:
        rec = by_source.get((run.topics.windows, sent.partition, sent.offset))
        assert rec is not None, f"{bad.name}: not in the DLQ"
        assert rec["reason"] == bad.reason, f"{bad.name}: {rec['reason']} ({rec['detail']})"
        assert isinstance(rec["detail"], str) and rec["detail"], bad.name
        assert base64.b64decode(rec["key_b64"]) == sent.key
        raw = bad.value or b""
        assert rec["value_size"] == len(raw)
        assert rec["value_sha256"] == hashlib.sha256(raw).hexdigest()
        assert rec["value_truncated"] == (len(raw) > DLQ_VALUE_CAP)
        if bad.value is None:
            assert rec["value_b64"] is None, bad.name
        else:
            assert base64.b64decode(rec["value_b64"]) == raw[:DLQ_VALUE_CAP], bad.name
        assert run.started - 5 <= rec["rejected_at"] <= time.time()


def test_every_valid_window_is_scored(run: Run, seed_model: SeedModel) -> None:
    assert set(run.scores) == set(run.valid)  # and nothing from the bad messages
    rows = list(run.valid.values())
    got = np.array([run.scores[k]["score"] for k in run.valid])
    np.testing.assert_allclose(got, seed_model.offline_scores[rows], rtol=0, atol=1e-5)


def _value(m: Metrics, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in m, f"{name}{labels} missing from /metrics"
    return m[key]


def test_metrics_match_what_was_sent(run: Run, seed_model: SeedModel) -> None:
    m = run.metrics
    n_valid, n_bad = len(run.valid), len(BAD_MESSAGES)
    assert _value(m, "ecg_windows_total", outcome="scored") == n_valid
    assert _value(m, "ecg_windows_total", outcome="rejected") == n_bad
    want = Counter(b.reason for b in BAD_MESSAGES)
    for reason in (*REJECT_REASONS, *SCORING_REASONS):
        got = _value(m, "ecg_windows_rejected_total", reason=reason)
        assert got == want.get(reason, 0), reason
    anomalies = sum(r["anomaly"] for r in run.scores.values())
    assert _value(m, "ecg_windows_anomalous_total") == anomalies
    assert _value(m, "ecg_scoring_batch_size_sum") == n_valid
    assert _value(m, "ecg_reconstruction_error_count") == n_valid
    assert _value(m, "ecg_end_to_end_latency_seconds_count") == n_valid
    assert _value(m, "ecg_model_info", version=seed_model.version, kind="dense") == 1
    assert _value(m, "ecg_model_threshold") == pytest.approx(seed_model.threshold)
    assert _value(m, "ecg_model_loaded") == 1
    assert not any("device" in dict(labels) for _, labels in m)


def test_worker_keeps_running(run: Run, kafka_bootstrap: str, shared_data: Path) -> None:
    from kafka import KafkaProducer

    run.worker.assert_running()
    assert run.worker.probe("/readyz") == 200
    assert run.worker.probe("/healthz") == 200
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        beat = np.sin(np.arange(140) / 7.0)  # any beat-shaped window (a flat one is refused)
        value = encode_window_json("dev-after", 0, time.time(), beat)
        producer.send(run.topics.windows, key=b"dev-after", value=value).get(timeout=30)
    finally:
        producer.close()
    with TopicReader(kafka_bootstrap, run.topics.scores) as reader:
        reader.until(
            lambda rs: ("dev-after", 0) in by_window(rs),
            30,
            "a score for the later window",
            run.worker.log_tail,
        )
    assert _value(run.worker.metrics(), "ecg_windows_total", outcome="scored") == len(run.valid) + 1
