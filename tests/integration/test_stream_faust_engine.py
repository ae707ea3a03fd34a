"""The Faust engine (`worker.engine: faust`) on the real broker, whatever the default engine is.

Replays the seed test split plus every kind of bad message through a Faust worker: every
window is scored like offline and every bad message is dead-lettered with its reason. (The
kill -9 crash test is not run on this engine: see docs/configuration.md, "Engines".)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from pipeline.replay import device_of, replay
from tests.bad_messages import BAD_MESSAGES as DECODE_FAILURES
from tests.bad_messages import FLAT_MESSAGES
from tests.integration.conftest import SeedModel
from tests.integration.stream import TopicReader, WorkerPool, by_window, new_topics

#: Everything the worker must dead-letter: decoding failures and flat windows.
BAD_MESSAGES = DECODE_FAILURES + FLAT_MESSAGES

pytestmark = pytest.mark.integration

DEVICES = 10


def test_faust_engine_scores_and_dead_letters(
    worker_pool: WorkerPool, kafka_bootstrap: str, seed_model: SeedModel, shared_data: Path
) -> None:
    from ecgwatch.cli_common import load_windows

    topics = new_topics(kafka_bootstrap, "it.faust")
    worker = worker_pool.start(topics, env={"ECGWATCH_WORKER__ENGINE": "faust"})
    x, _ = load_windows(str(shared_data))
    replay(x, bootstrap=kafka_bootstrap, topic=topics.windows, devices=DEVICES, progress=None)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for bad in BAD_MESSAGES:
        producer.send(topics.windows, key=b"dev-bad", value=bad.value, headers=list(bad.headers))
    producer.flush()
    producer.close()

    want = {device_of(i, DEVICES) for i in range(len(x))}
    with TopicReader(kafka_bootstrap, topics.scores) as reader:
        records = reader.until(
            lambda rs: want <= set(by_window(rs)), 120, "every window scored", worker.log_tail
        )
    got = by_window(records)
    scores = np.array([got[device_of(i, DEVICES)]["score"] for i in range(len(x))])
    np.testing.assert_allclose(scores, seed_model.offline_scores, atol=1e-5)
    with TopicReader(kafka_bootstrap, topics.dlq) as reader:
        dead = reader.until(
            lambda rs: len(rs) >= len(BAD_MESSAGES), 60, "every bad message", worker.log_tail
        )
    reasons = sorted(r["reason"] for r in dead)
    assert reasons == sorted(b.reason for b in BAD_MESSAGES)
    log = worker.log_tail(1_000_000)
    assert "[^Worker]: Ready" in log and "batch engine" not in log  # really the Faust engine
    worker.assert_running()
