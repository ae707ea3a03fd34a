"""``ecgwatch bench``'s baselines on a real broker: raw librdkafka and raw aiokafka consumption,
and the hand-written confluent-kafka loop (seed model, and the ``recommended`` row's plumbing
with the same registry), run through the harness's contender table as a bench round does."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.integration.conftest import SeedModel
from tests.integration.stream import SCORE_FIELDS

pytestmark = pytest.mark.integration

N = 600


def test_the_baselines_consume_and_the_loop_scores_every_window_once_committed(
    kafka_bootstrap: str, tmp_path: Path, seed_model: SeedModel
) -> None:
    from benchmarks import harness
    from benchmarks.kafka_io import create_topics, fill, read_score_times, wait_committed
    from pipeline.codec import encode_window_json

    run = uuid.uuid4().hex[:8]
    b = harness._Bench(
        tmp_path, kafka_bootstrap, str(seed_model.registry), run, N, str(seed_model.registry)
    )
    windows = b.windows_topic("json")
    contenders = {c.key: c for c in harness._CONTENDERS}
    loops = [contenders["loop"], contenders["loop_recommended"]]
    outs = {b.topic(f"{c.tag}0.scores"): 3 for c in loops}
    create_topics(kafka_bootstrap, {windows: 3, **outs}, set(outs))
    beats = np.random.default_rng(0).normal(size=(N, 140))
    fill(
        kafka_bootstrap,
        windows,
        beats,
        lambda d, s, t, x: (encode_window_json(d, s, t, x), []),
        devices=10,
    )
    for key in ("raw_librdkafka", "raw_aiokafka"):
        assert contenders[key].measure(b, windows, "") > 0, key
    for c in loops:
        prefix = b.topic(f"{c.tag}0")
        assert c.measure(b, windows, prefix) > 0, c.key
        assert wait_committed(kafka_bootstrap, prefix, windows, N, timeout_s=10), c.key
        assert read_score_times(kafka_bootstrap, f"{prefix}.scores", N, timeout_s=30)[0] == N
    assert b.loop_rss and all(0 < mb < 4096 for mb in b.loop_rss)

    # The worker's record: its fields, its model version, keyed by device.
    from kafka import KafkaConsumer, TopicPartition

    scores = b.topic("loop0.scores")
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(scores, p) for p in range(3)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        msgs = [m for ms in consumer.poll(timeout_ms=5000, max_records=N).values() for m in ms]
    finally:
        consumer.close()
    assert msgs
    for m in msgs:
        r = orjson.loads(m.value)
        assert tuple(r) == SCORE_FIELDS  # the worker's fields, in the worker's order
        assert m.key == r["device_id"].encode()
        assert r["model_version"] == seed_model.version
        assert r["anomaly"] == (r["score"] > r["threshold"])
