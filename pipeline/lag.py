"""Per-second consumer bookkeeping shared by both engines: heartbeat, assignment, lag."""

from __future__ import annotations

from typing import Any

from pipeline.metrics import PipelineMetrics
from pipeline.server import HealthState

__all__ = ["report_consumer_state"]


async def report_consumer_state(
    consumer: Any, topic: str, metrics: PipelineMetrics, health: HealthState
) -> None:
    """Beat the liveness heartbeat; publish assigned partitions of ``topic`` and their lag.

    ``consumer`` is Faust's or aiokafka's: both offer ``assignment()``, ``await
    position(tp)`` and ``highwater(tp)``. Lag series of partitions no longer assigned (after a
    rebalance) are removed, so they do not keep reporting a stale value.
    """
    health.beat()
    assigned = [tp for tp in consumer.assignment() if tp.topic == topic]
    health.assigned_partitions = len(assigned)
    metrics.assigned_partitions.set(len(assigned))
    gauge = metrics.consumer_lag
    seen = set()
    for tp in assigned:
        try:
            position = await consumer.position(tp)
            high = consumer.highwater(tp)
        except Exception:  # not fetched yet / mid-rebalance
            continue
        if position is None or high is None:
            continue
        gauge.labels(tp.topic, str(tp.partition)).set(max(0, int(high) - int(position)))
        seen.add((tp.topic, str(tp.partition)))
    # prometheus_client has no public listing of a family's label sets.
    for labels in list(getattr(gauge, "_metrics", {})):
        if labels not in seen:
            gauge.remove(*labels)
