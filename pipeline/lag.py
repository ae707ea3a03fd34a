"""Per-second consumer bookkeeping shared by both engines: heartbeat, assignment, lag."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pipeline.metrics import PipelineMetrics
from pipeline.server import HealthState

__all__ = ["BEHIND_S", "CatchUp", "report_consumer_state"]

#: A partition is "behind" when its lag would take longer than this to consume at the rate the
#: worker has been consuming it: its devices' newer windows may be waiting, so the stale-feed
#: check leaves it alone. (Lag alone is no test: under steady traffic the prefetched records
#: keep it above zero nearly all the time.)
BEHIND_S = 2.0


class CatchUp:
    """Per partition, whether the worker is more than :data:`BEHIND_S` behind on it.

    Parameters
    ----------
    clock : callable
        Monotonic seconds; injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last: dict[Any, tuple[float, int]] = {}

    def behind(self, tp: Any, position: int, lag: int) -> bool:
        """Record ``tp``'s position and lag now; whether it is behind (no lag: never; no
        progress since the last look, or none seen yet: behind)."""
        now = self.clock()
        prev = self._last.get(tp)
        self._last[tp] = (now, position)
        if lag <= 0:
            return False
        if prev is None or now <= prev[0]:
            return True
        rate = (position - prev[1]) / (now - prev[0])
        return rate <= 0 or lag / rate > BEHIND_S

    def forget(self, keep: set[Any]) -> None:
        """Drop partitions no longer assigned."""
        for tp in [tp for tp in self._last if tp not in keep]:
            del self._last[tp]


async def report_consumer_state(
    consumer: Any,
    topic: str,
    metrics: PipelineMetrics,
    health: HealthState,
    catch_up: CatchUp | None = None,
) -> set[int]:
    """Beat the liveness heartbeat; publish assigned partitions of ``topic`` and their lag.

    ``consumer`` is Faust's or aiokafka's: both offer ``assignment()``, ``await
    position(tp)`` and ``highwater(tp)``. Lag series of partitions no longer assigned (after a
    rebalance) are removed, so they do not keep reporting a stale value.

    Returns
    -------
    set of int
        The assigned partitions of ``topic`` that are behind (``catch_up``: by more than
        :data:`BEHIND_S` of consumption; without it: any lag), or whose lag is not known yet
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
        behind = catch_up.behind(tp, int(position), lag) if catch_up is not None else lag > 0
        if not behind:
            lagging.discard(tp.partition)
    if catch_up is not None:
        catch_up.forget(set(assigned))
    # prometheus_client has no public listing of a family's label sets.
    for labels in list(getattr(gauge, "_metrics", {})):
        if labels not in seen:
            gauge.remove(*labels)
    return lagging
