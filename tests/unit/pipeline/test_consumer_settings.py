"""The consumer-group timing every engine's Kafka consumer gets from the settings."""

from __future__ import annotations

import pytest

from pipeline.engine import consumer_kwargs
from pipeline.settings import HEARTBEAT_INTERVAL_S, WorkerSettings


def test_the_heartbeat_is_short_so_a_joining_worker_gets_partitions_soon() -> None:
    """A member notices a rebalance only at its next heartbeat: with the old 3 s a second
    process waited ~3 s for the first to let go of its partitions."""
    kw = consumer_kwargs(WorkerSettings())
    assert kw["heartbeat_interval_ms"] == int(HEARTBEAT_INTERVAL_S * 1000) <= 500
    assert kw["session_timeout_ms"] == 10_000


@pytest.mark.parametrize(("session_s", "heartbeat_ms"), [(1.0, 333), (1.2, 400), (30.0, 500)])
def test_the_heartbeat_stays_within_a_third_of_the_session_timeout(
    session_s: float, heartbeat_ms: int
) -> None:
    kw = consumer_kwargs(WorkerSettings(session_timeout_s=session_s))
    assert kw["heartbeat_interval_ms"] == heartbeat_ms
    assert kw["session_timeout_ms"] == int(session_s * 1000)
