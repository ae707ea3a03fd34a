"""Topic creation, fast pre-filling and reading back for the benchmark (aiokafka)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["create_topics", "fill", "raw_consume", "read_score_times", "wait_committed"]

#: ``(device_id, seq, ts, window) -> (value, headers)``. The window is a NumPy row; typed
#: ``Any`` because the codecs declare ``Sequence[float]``, which NumPy arrays are not to mypy.
Encoder = Callable[[str, int, float, Any], tuple[bytes, list[tuple[str, bytes]]]]


def create_topics(bootstrap: str, names: dict[str, int], log_append: set[str]) -> None:
    """Create ``{name: partitions}``; topics in ``log_append`` stamp records on append.

    Broker append time on the output topics is what "score record acknowledged" is timed
    with (single broker, ``acks=all``: the append is the acknowledgement).
    """
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.create_topics(
            [
                NewTopic(
                    n,
                    p,
                    1,
                    topic_configs={"message.timestamp.type": "LogAppendTime"}
                    if n in log_append
                    else {},
                )
                for n, p in names.items()
            ]
        )
    finally:
        admin.close()


def device_of(i: int, devices: int) -> tuple[str, int]:
    """Device id and sequence number of the ``i``-th window (same scheme as replay)."""
    return f"dev-{i % devices:04d}", i // devices


async def _fill(
    bootstrap: str, topic: str, windows: np.ndarray, encode: Encoder, devices: int
) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        max_batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
        part = DefaultPartitioner()
        cache: dict[bytes, int] = {}
        batches: dict[int, Any] = {}
        futures = []
        now = time.time()
        for i in range(len(windows)):
            device_id, seq = device_of(i, devices)
            key = device_id.encode()
            p = cache.get(key)
            if p is None:
                p = cache[key] = part(key, parts, parts)
            value, headers = encode(device_id, seq, now, windows[i])
            b = batches.get(p)
            if b is None:
                b = batches[p] = producer.create_batch()
            if b.append(key=key, value=value, timestamp=None, headers=headers) is None:
                futures.append(await producer.send_batch(b, topic, partition=p))
                b = batches[p] = producer.create_batch()
                b.append(key=key, value=value, timestamp=None, headers=headers)
        for p, b in batches.items():
            futures.append(await producer.send_batch(b, topic, partition=p))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def fill(
    bootstrap: str, topic: str, windows: np.ndarray, encode: Encoder, devices: int = 100
) -> None:
    """Produce every row of ``windows`` to ``topic`` (keyed by device) and wait for the acks."""
    asyncio.run(_fill(bootstrap, topic, windows, encode, devices))


async def _raw(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()  # first call: fetch metadata
            parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
        count, t0 = 0, None
        while count < n:
            got = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if t0 is None and got:
                t0 = time.perf_counter()
            for msgs in got.values():
                count += len(msgs)  # nothing per message: the consumption limit
        return count / (time.perf_counter() - (t0 or time.perf_counter()))
    finally:
        await consumer.stop()


def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    """Windows/s of a plain aiokafka consumer reading ``n`` records, first to last."""
    return asyncio.run(_raw(bootstrap, topic, n))


def read_score_times(bootstrap: str, topic: str, n: int, timeout_s: float) -> tuple[int, float]:
    """Distinct (device_id, seq) score records in ``topic`` and the last append time (epoch s).

    Waits until ``n`` distinct windows are scored or ``timeout_s`` passes.
    """
    import orjson
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen: set[tuple[str, int]] = set()
        last = 0.0
        deadline = time.monotonic() + timeout_s
        while len(seen) < n and time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=500, max_records=50_000).values():
                for m in msgs:
                    r = orjson.loads(m.value)
                    key = (r["device_id"], r["seq"])
                    if key not in seen:
                        seen.add(key)
                        last = max(last, m.timestamp / 1000.0)
        return len(seen), last
    finally:
        consumer.close()


def wait_committed(bootstrap: str, group: str, topic: str, n: int, timeout_s: float) -> bool:
    """Wait until ``group`` has committed ``n`` records of ``topic`` (polled, 4 times a second).

    Cheap on purpose: reading the score records while the worker runs would take CPU from
    it on a 2-core machine; they are read afterwards (:func:`read_score_times`).
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), group_id=group, enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(consumer.committed(tp) or 0 for tp in tps) >= n:
                return True
            time.sleep(0.25)
        return False
    finally:
        consumer.close()
