"""Consumer bookkeeping: assignment, lag per partition, stale series removed after a rebalance."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from pipeline.lag import report_consumer_state
from pipeline.metrics import create_metrics
from pipeline.server import HealthState


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, positions: dict[TP, int], highs: dict[TP, int]) -> None:
        self.positions, self.highs = positions, highs

    def assignment(self) -> set[TP]:
        return set(self.positions)

    async def position(self, tp: TP) -> int:
        return self.positions[tp]

    def highwater(self, tp: TP) -> int:
        return self.highs[tp]


def _lag(metrics, partition: int) -> float | None:  # type: ignore[no-untyped-def]
    return metrics.registry.get_sample_value(
        "ecg_consumer_lag", {"topic": "w", "partition": str(partition)}
    )


def test_lag_assignment_and_rebalance() -> None:
    metrics, health = create_metrics(), HealthState(model_loaded=True)
    a, b, other = TP("w", 0), TP("w", 1), TP("scores", 0)
    consumer = FakeConsumer({a: 10, b: 5, other: 0}, {a: 15, b: 5, other: 9})
    asyncio.run(report_consumer_state(consumer, "w", metrics, health))
    assert health.assigned_partitions == 2 and health.ready()[0]
    assert (_lag(metrics, 0), _lag(metrics, 1)) == (5.0, 0.0)
    assert metrics.registry.get_sample_value("ecg_consumer_assigned_partitions") == 2
    consumer.positions.pop(b)  # partition 1 revoked in a rebalance
    asyncio.run(report_consumer_state(consumer, "w", metrics, health))
    assert _lag(metrics, 1) is None and _lag(metrics, 0) == 5.0
    assert health.assigned_partitions == 1
