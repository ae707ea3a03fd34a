"""The ``batch`` consumption engine: aiokafka ``getmany`` micro-batches, manual commits.

Faust runs a stretch of per-message Python for every message before our code sees it, which
caps what one agent can consume on one core (measured: ``docs/performance.md``, "What was done
to the hot path"). This engine keeps the worker's batch logic
(:class:`pipeline.processor.WindowProcessor`) and its delivery contract, but consumes with one
``AIOKafkaConsumer.getmany`` per micro-batch and produces with one record batch per partition.

What is delivered and when offsets are committed is :mod:`pipeline.cycle`'s (shared with the
Faust engine): at-least-once, acks before commits, commits in batch order, fail-stop when a
batch cannot be finished. Partition revocation waits for the in-flight batches and commits
them first.

Alert state (open episodes, or the per-window cooldown) lives in process memory here and is
rebuilt from the alerts topic on every partition assignment (:mod:`pipeline.alert_state`), so
a restart or a rebalance neither loses an open episode nor opens it again with a second
``start``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from pipeline.alert_state import (
    RESTORE_TIMEOUT_S,
    fold_alerts,
    fold_episodes,
    fold_stale,
    merge_restored,
    read_recent_alerts,
)
from pipeline.cycle import BatchCycle
from pipeline.feed_restore import seed_feeds
from pipeline.feeds import FEED_CHECK_INTERVAL_S
from pipeline.lag import CatchUp, report_consumer_state
from pipeline.lifecycle import arm_shutdown_watchdog, consume_batches
from pipeline.output import BatchProducer
from pipeline.processor import InRecord, WindowProcessor
from pipeline.server import HealthState
from pipeline.settings import WorkerSettings

__all__ = [
    "BatchEngine",
    "close_client",
    "consumer_kwargs",
    "producer_kwargs",
    "run_batch_engine",
]

log = logging.getLogger(__name__)


class BatchEngine:
    """Consume ``ecg.windows`` in micro-batches and run them through the batch cycle.

    The adapter between aiokafka and :class:`pipeline.cycle.BatchCycle`: a ``getmany`` result
    becomes one batch and its commit offsets; partition assignment rebuilds the alert state,
    revocation drains and commits first.

    Parameters
    ----------
    settings : WorkerSettings
        Kafka address, topics, batch size/timeout, group id, commit interval.
    processor : WindowProcessor
        The batch logic shared with the Faust engine.
    health : HealthState
        Updated with partition assignment and a heartbeat.
    """

    def __init__(
        self, settings: WorkerSettings, processor: WindowProcessor, health: HealthState
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.health = health
        self.state: dict[str, Any] = {}  # alert state per device (rebuilt on assignment)
        processor.alert_state = self.state
        # Partitions behind (or not fetched yet): the stale-feed check leaves them alone.
        self._lagging: set[int] = set()
        self._catch_up = CatchUp()
        # Cleared until the state is rebuilt for the current assignment: aiokafka may hand out
        # records of new partitions while the assignment callback is still running.
        self._state_ready = asyncio.Event()
        self._device_partition: dict[str, int] = {}
        # Partitions of the last assignment, and the offsets this worker last committed:
        # what lets a rebalance that only takes partitions away skip the rebuild.
        self._held: set[int] = set()
        self._committed: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        # The feed watch's seed of the current assignment, while it reads (on_assigned), the
        # committed offsets it reads up to, and whether it finished (a rebalance may cut it
        # short; partitions kept through that rebalance are then seeded again).
        self._seeding: asyncio.Future[None] | None = None
        self._seed_from: dict[int, int] | None = None
        self._seed_done = True
        self.consumer: Any = None
        self.cycle: BatchCycle | None = None

    def stop(self) -> None:
        """Ask the engine to finish the current batch and return from :meth:`run`."""
        self._stop.set()

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Run until :meth:`stop`; commits everything delivered before returning."""
        producer = AIOKafkaProducer(**producer_kwargs(self.settings))
        self.consumer = AIOKafkaConsumer(**consumer_kwargs(self.settings))
        await producer.start()
        self.cycle = BatchCycle(
            self.processor,
            BatchProducer(producer),
            self.health,
            commit=self._commit,
            started_file=self.settings.started_file,
            commit_interval_s=self.settings.commit_interval_s,
        )
        self.consumer.subscribe([self.settings.topics.windows], listener=_Listener(self))
        await self.consumer.start()
        beat = asyncio.ensure_future(self._heartbeat())
        feeds = asyncio.ensure_future(self._feed_timer())
        try:
            await self._loop()
            feeds.cancel()
            await self.cycle.shutdown()
        finally:
            beat.cancel()
            feeds.cancel()
            self._cancel_seed()
            await close_client(self.consumer, "consumer")
            await close_client(producer, "producer")

    async def _loop(self) -> None:
        s = self.settings
        await consume_batches(
            self.consumer,
            self._stop,
            batch_size=s.batch_size,
            timeout_s=s.batch_timeout_s,
            lock=self._lock,
            ready=self._wait_state_ready,
            handle=self._handle,
            what="the batch engine",
            idle=self._drain_if_busy,
        )

    async def _drain_if_busy(self) -> None:
        """Idle: finish and commit the in-flight batches now."""
        assert self.cycle is not None
        if self.cycle.has_work:
            await self.cycle.drain()

    async def _handle(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        """One ``getmany`` result through the cycle."""
        assert self.cycle is not None
        # aiokafka's ConsumerRecord has InRecord's attributes: no per-message copy.
        batch: list[InRecord] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, msgs in fetched.items():
            batch += msgs
            offsets[tp] = msgs[-1].offset + 1
        result = await self.cycle.submit(batch, offsets, self.state)
        for pos, device_id, *_ in result.anomalies:
            self._device_partition[device_id] = batch[pos].partition

    async def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self.consumer.commit(offsets)
        self._committed.update({tp.partition: off for tp, off in offsets.items()})

    # ------------------------------------------------------------------ rebalancing
    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish and commit in-flight batches before partitions move to another worker.

        The revoked partitions' alert and feed state is kept until the next assignment: a
        rebalance revokes every partition, and those that come straight back need none of it
        rebuilt (:meth:`on_assigned`).
        """
        self._cancel_seed()
        if self.cycle is not None:
            async with self._lock:
                await self.cycle.drain()
        self._state_ready.clear()  # until the next assignment has settled it

    def _forget(self, gone: set[int]) -> None:
        """Drop the state of partitions another worker owns now (it is stale here)."""
        if not gone:
            return
        self.processor.feeds.revoke(gone)
        for device, part in list(self._device_partition.items()):
            if part in gone:
                self._device_partition.pop(device, None)
                self.state.pop(device, None)

    async def _wait_state_ready(self) -> None:
        try:
            await asyncio.wait_for(self._state_ready.wait(), RESTORE_TIMEOUT_S + 10)
        except TimeoutError:  # fail open: alert without the restored state rather than stall
            log.warning("alert state not rebuilt in time; alerting without it")
            self._state_ready.set()

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Rebuild the alert state from the alerts topic (includes other workers' alerts):
        open episodes go on where the previous owner left them.

        When every assigned partition was this worker's already and nobody has committed on
        it since (a worker joined and took some of ours away), the state in memory is the
        newest there is: it is kept, and the worker goes on at once instead of stalling for
        the rebuild (~0.7 s; docs/performance.md, "Two processes").
        """
        self.health.assigned_partitions = len(assigned)
        parts = {tp.partition for tp in assigned}
        try:
            self._forget(self._held - parts)
            committed = await self._committed_offsets(assigned)
            kept = parts <= self._held and self._nobody_else_committed(parts, committed)
            self._held = parts
            if kept:
                print(
                    f"[worker] alert state: kept for the {len(parts)} partitions this worker "
                    "held already",
                    flush=True,
                )
                if not self._seed_done:  # this rebalance cut the seed of those partitions short
                    self._seed_in_background(parts, self._seed_from)
                return
            await self._restore_state()
            self._seed_in_background(parts, committed)
        finally:
            self._state_ready.set()

    async def _committed_offsets(self, assigned: set[TopicPartition]) -> dict[int, int] | None:
        """The group's committed offset of each of ``assigned`` now, by partition (partitions
        without one are left out); None when they cannot be read."""
        out = {}
        for tp in assigned:
            try:
                offset = await self.consumer.committed(tp)
            except Exception:
                return None
            if offset is not None:
                out[tp.partition] = int(offset)
        return out

    def _seed_in_background(self, parts: set[int], committed: dict[int, int] | None) -> None:
        """Seed the feed watch without holding the first batch back for it (its reads take
        ~0.3-0.7 s): a device seen live meanwhile is left as it is (``FeedWatch.seed``), and
        the read ends at the offsets committed at the assignment. A revocation or a newer
        assignment cancels a seed still reading (its partitions may be another worker's)."""
        self._cancel_seed()
        self._seed_from, self._seed_done = committed, False
        self._seeding = asyncio.ensure_future(
            seed_feeds(self.settings, self.processor, parts, committed)
        )
        self._seeding.add_done_callback(self._seed_finished)

    def _seed_finished(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled():
            self._seed_done = True

    def _cancel_seed(self) -> None:
        if self._seeding is not None and not self._seeding.done():
            self._seeding.cancel()
        self._seeding = None

    def _nobody_else_committed(self, parts: set[int], committed: Mapping[int, int] | None) -> bool:
        """Whether the group's committed offset of each partition is still this worker's own
        last commit (else another worker consumed it meanwhile: rebuild)."""
        if committed is None:  # not known: rebuild, as on any other assignment
            return False
        return all(committed.get(p) == self._committed.get(p) for p in parts)

    async def _restore_state(self) -> None:
        s = self.settings
        try:
            alerts = await asyncio.get_running_loop().run_in_executor(
                None, read_recent_alerts, s.bootstrap, s.topics.alerts, s.security
            )
        except Exception as exc:  # fail open: an alert may repeat, none is lost
            log.warning("alert state not restored from %s: %r", s.topics.alerts, exc)
            return
        policy = self.processor.policy
        restored = (
            fold_episodes(alerts) if policy.episodes else fold_alerts(alerts, policy.cooldown_s)
        )
        merge_restored(self.state, restored, policy.episodes)
        stale = fold_stale(alerts)
        # Batches wait for this restore here, so no device has sent since: nothing ends now.
        ended = self.processor.restore_stale(stale)
        if ended and self.cycle is not None:
            await self.cycle.publish(ended)
        opened = sum(1 for e in restored.values() if e.get("open"))
        print(  # a lifecycle line, like the worker's other "[worker]" lines
            f"[worker] alert state: {len(restored)} devices restored from {len(alerts)} "
            f"alerts in {s.topics.alerts} ({opened} open episodes, {len(stale)} stale feeds)",
            flush=True,
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._lagging = await report_consumer_state(
                self.consumer,
                self.settings.topics.windows,
                self.processor.metrics,
                self.health,
                self._catch_up,
            )

    async def _feed_timer(self) -> None:
        """Every second: ``feed_stale`` starts for silent devices, delivered before the next
        batch or revocation (under the engine's lock, so a revoked partition's open stale
        episode is in the alerts topic before its new owner restores it)."""
        assert self.cycle is not None
        while True:
            await asyncio.sleep(FEED_CHECK_INTERVAL_S)
            if not self._state_ready.is_set():
                continue
            async with self._lock:
                await self.cycle.publish(self.processor.stale_alerts(self._lagging))


#: How long closing one client may take; with the broker gone aiokafka can wait far longer.
CLOSE_TIMEOUT_S = 5.0


async def close_client(client: Any, what: str) -> None:
    """Stop an aiokafka client; a broker that is gone must not turn a stop into a failure.

    Everything delivered is committed before this runs, so nothing is lost by giving up: the
    group notices the member is gone after ``kafka.session_timeout_s``.
    """
    try:
        await asyncio.wait_for(client.stop(), CLOSE_TIMEOUT_S)
    except BaseException as exc:  # includes the CancelledError aiokafka raises on a dead broker
        log.warning("closing the Kafka %s failed (%r); exiting anyway", what, exc)


def producer_kwargs(s: WorkerSettings) -> dict[str, Any]:
    return dict(
        bootstrap_servers=s.bootstrap.split(","),
        **s.security.client_kwargs(),
        acks="all",
        linger_ms=2,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


def consumer_kwargs(s: WorkerSettings) -> dict[str, Any]:
    session_ms = int(s.session_timeout_s * 1000)
    return dict(
        bootstrap_servers=s.bootstrap.split(","),
        **s.security.client_kwargs(),
        group_id=s.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
        # kafka.session_timeout_s: how soon a dead worker's partitions move (as for Faust).
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=round(s.heartbeat_interval_s * 1000),
    )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: BatchEngine) -> None:
        self.engine = engine

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.engine.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.engine.on_assigned(set(assigned))


def run_batch_engine(
    settings: WorkerSettings, processor: WindowProcessor, health: HealthState
) -> int:
    """Run the batch engine until SIGINT/SIGTERM; returns the exit code."""

    async def main() -> None:
        engine = BatchEngine(settings, processor, health)
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            arm_shutdown_watchdog()  # whatever the broker does, the process ends in time
            engine.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await engine.run()

    asyncio.run(main())
    return 0
