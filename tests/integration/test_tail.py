"""``pipeline.tail.read_records`` on a real broker: start positions, stop modes, bad records."""

from __future__ import annotations

import time

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.alert_state import read_recent_alerts
from pipeline.security import KafkaSecurity
from pipeline.tail import read_records
from pipeline.topics import TopicSpec, create_topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def filled_topic(kafka_bootstrap: str) -> str:
    """Two partitions: p0 holds records 0..9, p1 holds 100..104, then one invalid record."""
    topic = "test.tail"
    create_topics(kafka_bootstrap, [TopicSpec(topic, partitions=2)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for i in range(10):
            producer.send(topic, orjson.dumps({"i": i}), partition=0)
        for i in range(100, 105):
            producer.send(topic, orjson.dumps({"i": i}), partition=1)
        producer.send(topic, b"not json", partition=1)
        producer.send(topic, b"[1, 2]", partition=1)  # JSON, but not an object
        producer.flush(timeout=30)
    finally:
        producer.close()
    return topic


def test_newest_records_per_partition_until_the_end(
    kafka_bootstrap: str, filled_topic: str
) -> None:
    t0 = time.monotonic()
    got = list(
        read_records(
            kafka_bootstrap,
            filled_topic,
            last_per_partition=4,
            until_end=True,
            skip_invalid=True,
            timeout_s=60,
        )
    )
    # p0: offsets 6..9; p1: offsets 3..6 of which 5 and 6 are invalid and skipped.
    assert sorted(r["i"] for r in got) == [6, 7, 8, 9, 103, 104]
    assert {(r["_partition"], r["_offset"]) for r in got if r["i"] == 104} == {(1, 4)}
    assert time.monotonic() - t0 < 30  # stopped at the end, not at the timeout


def test_invalid_records_raise_unless_skipped(kafka_bootstrap: str, filled_topic: str) -> None:
    with pytest.raises((orjson.JSONDecodeError, TypeError)):
        list(read_records(kafka_bootstrap, filled_topic, until_end=True, timeout_s=60))


def test_until_end_on_an_empty_topic_returns_at_once(kafka_bootstrap: str) -> None:
    create_topics(kafka_bootstrap, [TopicSpec("test.tail.empty", partitions=2)])
    t0 = time.monotonic()
    assert list(read_records(kafka_bootstrap, "test.tail.empty", until_end=True)) == []
    assert time.monotonic() - t0 < 15


def test_alert_restore_reads_the_newest_alerts(kafka_bootstrap: str, filled_topic: str) -> None:
    got = read_recent_alerts(kafka_bootstrap, filled_topic, KafkaSecurity(), max_records=2)
    assert sorted(r["i"] for r in got) == [8, 9]  # p1's newest two are the invalid records
