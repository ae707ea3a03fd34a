"""Vectorised histogram observation, the NumPy scorer self-check and batched production."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram

from pipeline.metrics import observe_many
from pipeline.output import BatchProducer
from pipeline.processor import OutRecord


def _samples(h: Histogram) -> dict[str, float]:
    return {
        f"{s.name}{s.labels}": s.value
        for m in h.collect()
        for s in m.samples
        if "created" not in s.name
    }


def test_observe_many_equals_observe_per_value() -> None:
    buckets = (0.01, 0.05, 0.1, 1.0)
    a = Histogram("a", "a", buckets=buckets, registry=CollectorRegistry())
    b = Histogram("a", "a", buckets=buckets, registry=CollectorRegistry())
    values = np.array([0.0, 0.01, 0.0100001, 0.05, 0.2, 1.0, 5.0, 0.03])
    for v in values:
        a.observe(float(v))
    observe_many(b, values)
    observe_many(b, np.array([]))
    assert _samples(a) == _samples(b)


class _FakeBatch:
    def __init__(self, cap: int) -> None:
        self.cap, self.records = cap, []  # type: ignore[var-annotated]

    def append(self, *, key: Any, value: Any, timestamp: Any) -> Any:
        if len(self.records) >= self.cap:
            return None
        self.records.append((key, value))
        return object()


class _FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, list[Any]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    def create_batch(self) -> _FakeBatch:
        return _FakeBatch(2)

    async def send_batch(self, batch: _FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch.records))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def test_batch_producer_places_keys_like_the_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    fake = _FakeProducer()
    out = BatchProducer(fake)
    records = [OutRecord("s", f"dev-{i % 3}".encode(), b"%d" % i) for i in range(7)]
    futures = asyncio.run(out.send_all(records))
    assert len(futures) == len(fake.sent)
    part = DefaultPartitioner()
    got = [(p, k, v) for _, p, recs in fake.sent for k, v in recs]
    assert sorted(v for _, _, v in got) == sorted(r.value for r in records)
    for p, k, _ in got:
        assert p == part(k, [0, 1, 2, 3], [0, 1, 2, 3])
    # order within a key is kept (one device's scores stay in sequence)
    for key in {r.key for r in records}:
        sent = [v for _, k, v in got if k == key]
        assert sent == [r.value for r in records if r.key == key]
