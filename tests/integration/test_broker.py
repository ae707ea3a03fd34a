"""The local Kafka broker and the pipeline topics, against a real broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ecgwatch import broker
from pipeline.topics import TopicSpec, create_topics, default_topics, topic_partitions

pytestmark = pytest.mark.integration


def test_start_stop_status_are_idempotent(tmp_path: Path) -> None:
    port, controller_port = broker.free_ports(2)
    assert not broker.status(tmp_path).running
    assert broker.stop(tmp_path) is False  # stopping a stopped broker is fine
    first = broker.start(port, tmp_path, controller_port)
    try:
        assert first.running and first.port == port and first.pid is not None
        again = broker.start(port, tmp_path, controller_port)
        assert again.pid == first.pid  # no second JVM
        st = broker.status(tmp_path)
        assert st.running and st.bootstrap == f"localhost:{port}"
        assert (tmp_path / "broker.pid").read_text().strip() == str(first.pid)
        assert "Kafka Server started" in st.log_file.read_text()
    finally:
        assert broker.stop(tmp_path) is True
    assert broker.stop(tmp_path) is False
    st = broker.status(tmp_path)
    assert not st.running and st.pid is None
    assert not (tmp_path / "broker.pid").exists()


def test_produce_consume_round_trip(kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, [TopicSpec(topic, 2)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for i in range(5):
            producer.send(topic, key=b"dev-1", value=f"m{i}".encode(), headers=[("h", b"v")])
        producer.flush(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=20_000,
    )
    try:
        got = []
        for msg in consumer:
            got.append(msg)
            if len(got) == 5:
                break
    finally:
        consumer.close()
    # One key -> one partition -> produce order is kept.
    assert [m.value for m in got] == [f"m{i}".encode() for i in range(5)]
    assert {m.key for m in got} == {b"dev-1"}
    assert {m.partition for m in got} == {got[0].partition}
    assert got[0].headers == [("h", b"v")]


def test_topics_created_idempotently_with_partition_counts(kafka_bootstrap: str) -> None:
    results = create_topics(kafka_bootstrap)  # the fixture created them already
    assert [(r.name, r.created, r.partitions) for r in results] == [
        ("ecg.windows", False, 8),
        ("ecg.scores", False, 8),
        ("ecg.alerts", False, 1),
        ("ecg.windows.dlq", False, 1),
    ]
    name = f"test.topics.{uuid.uuid4().hex[:8]}"
    specs = default_topics(3, windows=name, scores=f"{name}.s", alerts=f"{name}.a", dlq=f"{name}.d")
    assert [r.created for r in create_topics(kafka_bootstrap, specs)] == [True] * 4
    assert [r.created for r in create_topics(kafka_bootstrap, specs)] == [False] * 4
    counts = topic_partitions(kafka_bootstrap, [s.name for s in specs])
    assert counts == {name: 3, f"{name}.s": 3, f"{name}.a": 1, f"{name}.d": 1}


def test_auto_create_is_off(kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    # A typo in a topic name must fail, not silently create a topic.
    name = f"no.such.topic.{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_block_ms=2000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(name, b"x").get(timeout=5)
    finally:
        producer.close()
    assert topic_partitions(kafka_bootstrap, [name]) == {}
