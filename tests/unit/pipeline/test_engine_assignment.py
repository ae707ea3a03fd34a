"""The batch engine's partition assignment, in-process with a fake consumer and fake reads:
the alert state is rebuilt before the first batch, while the feed watch's seed (reads of
~0.3-0.7 s) goes on in the background, pinned to the offsets committed at the assignment and
cancelled by a revocation."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from aiokafka import TopicPartition

import pipeline.engine as engine_mod
import pipeline.feed_restore as feed_restore
from pipeline.engine import BatchEngine
from pipeline.processor import InRecord
from pipeline.server import HealthState
from pipeline.settings import WorkerSettings
from tests.bad_messages import window_doc
from tests.unit.pipeline.test_feeds import Clock, Worker

TOPIC = WorkerSettings().topics.windows


class FakeConsumer:
    def __init__(self, committed: dict[int, int]) -> None:
        self._committed = committed

    async def committed(self, tp: TopicPartition) -> int | None:
        return self._committed.get(tp.partition)


def _window(device: str, partition: int, offset: int) -> InRecord:
    doc = window_doc(device, 7, ts=100.0, samples=[0.1] * 140)
    return InRecord(TOPIC, partition, offset, device.encode(), json.dumps(doc).encode())


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The seed's read blocks until ``release`` is set; what it was asked is recorded."""
    got: dict[str, Any] = {"release": threading.Event(), "ends": None}

    def newest_per_key(bootstrap: str, topic: str, ends: dict, security: Any) -> list:
        got["ends"] = dict(ends)
        assert got["release"].wait(10)
        return [(_window("quiet-device", 1, 4), 1_000_000.0 - 5)]

    def before_committed(*args: Any, **kwargs: Any) -> list:
        raise AssertionError("the committed offsets were known: no second lookup")

    monkeypatch.setattr(feed_restore, "read_newest_per_key", newest_per_key)
    monkeypatch.setattr(feed_restore, "read_newest_before_committed", before_committed)
    monkeypatch.setattr(engine_mod, "read_recent_alerts", lambda *a, **kw: [])
    return got


def _engine(committed: dict[int, int]) -> BatchEngine:
    worker = Worker(Clock())
    engine = BatchEngine(WorkerSettings(), worker.proc, HealthState())
    engine.consumer = FakeConsumer(committed)
    return engine


def _assigned(*partitions: int) -> set[TopicPartition]:
    return {TopicPartition(TOPIC, p) for p in partitions}


def test_the_first_batch_does_not_wait_for_the_feed_seed(reads: dict[str, Any]) -> None:
    async def scenario() -> None:
        engine = _engine({0: 120, 1: 80, 5: 999})
        await asyncio.wait_for(engine.on_assigned(_assigned(0, 1)), 5)
        assert engine._state_ready.is_set()  # batches may go while the seed still reads
        assert engine.processor.feeds.snapshot() == []
        reads["release"].set()
        assert engine._seeding is not None
        await asyncio.wait_for(engine._seeding, 5)
        assert [d for d, _ in engine.processor.feeds.snapshot()] == ["quiet-device"]
        # pinned to the assignment's committed offsets, of the assigned partitions only
        assert reads["ends"] == {0: 120, 1: 80}

    asyncio.run(scenario())


def test_a_revocation_cancels_a_seed_still_reading(reads: dict[str, Any]) -> None:
    async def scenario() -> None:
        engine = _engine({0: 120, 1: 80})
        await engine.on_assigned(_assigned(0, 1))
        seeding = engine._seeding
        await engine.on_revoked(_assigned(0, 1))
        reads["release"].set()
        assert seeding is not None
        with pytest.raises(asyncio.CancelledError):
            await seeding
        await asyncio.sleep(0.2)  # the read has returned meanwhile; nothing was applied
        assert engine.processor.feeds.snapshot() == []

    asyncio.run(scenario())


def test_partitions_kept_with_our_own_commits_keep_their_state(reads: dict[str, Any]) -> None:
    """A rebalance that only takes partitions away, with the group's offsets still this
    worker's own commits: nothing is rebuilt or seeded. Another worker's commit: rebuilt."""

    async def scenario() -> None:
        engine = _engine({0: 120, 1: 80})
        engine._held, engine._committed = {0, 1, 2}, {0: 120, 1: 80, 2: 40}
        await engine.on_assigned(_assigned(0, 1))
        assert engine._seeding is None and engine._held == {0, 1}
        engine.consumer = FakeConsumer({0: 150, 1: 80})  # someone else consumed partition 0
        await engine.on_assigned(_assigned(0, 1))
        assert engine._seeding is not None  # rebuilt: restored and seeding
        reads["release"].set()
        await asyncio.wait_for(engine._seeding, 5)
        assert reads["ends"] == {0: 150, 1: 80}

    asyncio.run(scenario())


def test_a_seed_cut_short_by_a_rebalance_is_read_again_for_the_partitions_kept(
    reads: dict[str, Any],
) -> None:
    """A second worker joins while the first still seeds: the rebalance cancels the seed, the
    first keeps partition 0 with its state, and that partition is seeded again from the
    offsets committed at the first assignment."""

    async def scenario() -> None:
        engine = _engine({0: 120, 1: 80})
        await engine.on_assigned(_assigned(0, 1))
        first = engine._seeding
        await engine.on_revoked(_assigned(0, 1))
        engine._committed = {0: 120, 1: 80}  # the group's offsets are still this worker's
        await engine.on_assigned(_assigned(0))
        assert engine._seeding is not None and engine._seeding is not first
        reads["release"].set()
        await asyncio.wait_for(engine._seeding, 5)
        assert reads["ends"] == {0: 120}
        assert [d for d, _ in engine.processor.feeds.snapshot()] == ["quiet-device"]
        done = engine._seeding
        await engine.on_assigned(_assigned(0))  # seeded now: kept without another read
        assert engine._seeding is done

    asyncio.run(scenario())
