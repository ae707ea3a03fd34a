"""Per-second consumer bookkeeping shared by both engines: heartbeat, assignment, lag."""

from __future__ import annotations

from typing import Any

from pipeline.metrics import PipelineMetrics
from pipeline.server import HealthState

__all__ = ["report_consumer_state"]


async def report_consumer_state(
    consumer: Any, topic: str, metrics: PipelineMetrics, health: HealthState
) -> set[int]:
    """Beat the liveness heartbeat; publish assigned partitions of ``topic`` and their lag.

    ``consumer`` is Faust's or aiokafka's: both offer ``assignment()``, ``await
    position(tp)`` and ``highwater(tp)``. Lag series of partitions no longer assigned (after a
    rebalance) are removed, so they do not keep reporting a stale value.

    Returns
    -------
    set of int
        The assigned partitions of ``topic`` that are behind, or whose lag is not known yet
        (not fetched since the assignment): the stale-feed check does not judge them.
    """
    health.beat()
    assigned = [tp for tp in consumer.assignment() if tp.topic == topic]
    health.assigned_partitions = len(assigned)
    metrics.assigned_partitions.set(len(assigned))
    gauge = metrics.consumer_lag
    seen = set()
    lagging = set()
    for tp in assigned:
        lagging.add(tp.partition)
        try:
            position = await consumer.position(tp)
            high = consumer.highwater(tp)
        except Exception:  # not fetched yet / mid-rebalance
            continue
        if position is None or high is None:
            continue
        lag = max(0, int(high) - int(position))
        gauge.labels(tp.topic, str(tp.partition)).set(lag)
        seen.add((tp.topic, str(tp.partition)))
        if lag == 0:
            lagging.discard(tp.partition)
    # prometheus_client has no public listing of a family's label sets.
    for labels in list(getattr(gauge, "_metrics", {})):
        if labels not in seen:
            gauge.remove(*labels)
    return lagging
