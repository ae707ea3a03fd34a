"""The ``batch`` consumption engine: aiokafka ``getmany`` micro-batches, manual commits.

Faust runs a stretch of per-message Python for every message before our code sees it, which
caps what one agent can consume on one core (measured: ``docs/performance.md``, "What was done
to the hot path"). This engine keeps the worker's batch logic
(:class:`pipeline.processor.WindowProcessor`) and its delivery contract, but consumes with one
``AIOKafkaConsumer.getmany`` per micro-batch and produces with one record batch per partition.

Delivery is at-least-once, as with the Faust engine: a batch's offsets are committed only after
every output record of that batch (scores, alerts, dead letters) is acknowledged by the broker
(``acks=all``). Up to :data:`MAX_IN_FLIGHT` batches await their acks while the next is
computed; commits stay in batch order. If a batch cannot be delivered during shutdown, or anything
unexpected happens, the process exits without committing (fail-stop), so it is re-processed.
Partition revocation waits for the in-flight batches and commits them first.

Alert de-duplication state lives in process memory here and is rebuilt from the alerts topic
on every partition assignment (:mod:`pipeline.alert_state`), so a restart or a rebalance does
not repeat an alert inside its cooldown.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from pipeline.alert_state import RESTORE_TIMEOUT_S, fold_alerts, read_recent_alerts
from pipeline.lag import report_consumer_state
from pipeline.lifecycle import announce_first_batch, fail_stop
from pipeline.output import BatchProducer, deliver_with_retry
from pipeline.processor import InRecord, OutRecord, WindowProcessor
from pipeline.server import HealthState
from pipeline.settings import WorkerSettings

__all__ = ["MAX_IN_FLIGHT", "SHUTDOWN_DELIVERY_TIMEOUT_S", "BatchEngine", "run_batch_engine"]

log = logging.getLogger(__name__)

#: How long shutdown may spend finishing the delivery of the in-flight batches.
SHUTDOWN_DELIVERY_TIMEOUT_S = 15.0

#: Batches whose outputs may await their acks while the next one is computed. A produce
#: round trip with acks=all is long next to computing a batch, so with one batch in flight
#: the worker mostly waits (measured: docs/performance.md, "Pipelining").
MAX_IN_FLIGHT = 4

#: Batches up to this size are computed on the event loop itself. Handing a batch to the
#: scoring thread and back costs two GIL hand-overs (up to ``sys.getswitchinterval()``,
#: 5 ms, each while the other thread is busy); a small batch computes in less than that.
INLINE_BATCH = 200


class _Pending:
    """A delivered-but-not-yet-acknowledged batch: its ack wait and its commit offsets."""

    def __init__(self, task: asyncio.Task[None], offsets: dict[TopicPartition, int], result: Any):
        self.task, self.offsets, self.result = task, offsets, result


class BatchEngine:
    """Consume ``ecg.windows`` in micro-batches and score them with ``processor``.

    Parameters
    ----------
    settings : WorkerSettings
        Kafka address, topics, batch size/timeout, group id.
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
        self.state: dict[str, Any] = {}  # alert de-dup state (rebuilt on assignment)
        # Cleared until the state is rebuilt for the current assignment: aiokafka may hand out
        # records of new partitions while the assignment callback is still running.
        self._state_ready = asyncio.Event()
        self._device_partition: dict[str, int] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self._lock = asyncio.Lock()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._stop = asyncio.Event()
        self._started = False
        self.consumer: Any = None
        self.output: BatchProducer | None = None

    def stop(self) -> None:
        """Ask the engine to finish the current batch and return from :meth:`run`."""
        self._stop.set()

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Run until :meth:`stop`; commits everything delivered before returning."""
        s = self.settings
        bootstrap = s.bootstrap.split(",")
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            **s.security.client_kwargs(),
            acks="all",
            linger_ms=2,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **s.security.client_kwargs(),
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await producer.start()
        self.output = BatchProducer(producer)
        self.consumer.subscribe([s.topics.windows], listener=_Listener(self))
        await self.consumer.start()
        beat = asyncio.ensure_future(self._heartbeat())
        try:
            await self._loop()
            try:
                await asyncio.wait_for(self._drain(), SHUTDOWN_DELIVERY_TIMEOUT_S)
            except BaseException:
                fail_stop("could not finish the in-flight batches during shutdown")
        finally:
            beat.cancel()
            await self.consumer.stop()
            await producer.stop()
            self._executor.shutdown(wait=False)

    async def _loop(self) -> None:
        s = self.settings
        timeout_ms = max(1, int(s.batch_timeout_s * 1000))
        while not self._stop.is_set():
            fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=s.batch_size)
            if not fetched:
                if self._pending:  # idle: finish the in-flight batches now
                    async with self._lock:
                        await self._drain()
                continue
            await self._wait_state_ready()
            try:
                async with self._lock:
                    await self._handle(fetched)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                fail_stop(f"unexpected error in the batch engine: {exc!r}")

    # ------------------------------------------------------------------ one batch
    async def _handle(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        if not self._started:
            self._started = True
            announce_first_batch(self.settings.started_file)
        # aiokafka's ConsumerRecord has InRecord's attributes: no per-message copy.
        batch: list[InRecord] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, msgs in fetched.items():
            batch += msgs
            offsets[tp] = msgs[-1].offset + 1
        self.health.beat()
        loop = asyncio.get_running_loop()
        try:
            if len(batch) <= INLINE_BATCH:  # small: skip two GIL hand-overs (latency)
                result = self.processor.compute(batch)
            else:
                result = await loop.run_in_executor(self._executor, self.processor.compute, batch)
        except Exception as exc:  # never reached for bad input; a bug must not stop us
            log.exception("batch processing failed: %r", exc)
            result = self.processor.fail_batch(batch, f"internal error: {exc!r}")
        for _pos, device_id, *_ in result.anomalies:
            self._device_partition[device_id] = batch[_pos].partition
        alerts = self.processor.alerts(result, self.state)
        records = result.scores + alerts + result.dlq
        task = asyncio.ensure_future(self._deliver(records))
        self._pending.append(_Pending(task, offsets, result))
        while len(self._pending) > MAX_IN_FLIGHT:  # commits stay in batch order
            await self._finish(self._pending.popleft())

    async def _deliver(self, records: Sequence[OutRecord]) -> None:
        """Produce ``records``; retry until the broker acknowledged every one of them."""
        assert self.output is not None
        await deliver_with_retry(self.output.send_all, records, self.output.forget_metadata)

    async def _finish(self, pending: _Pending) -> None:
        """Wait for a batch's acks, then commit its offsets (in order, one batch at a time)."""
        await pending.task
        self.processor.delivered(pending.result)
        try:
            await self.consumer.commit(pending.offsets)
        except Exception as exc:  # e.g. rebalanced away: the new owner re-processes (dupes)
            log.warning(
                "commit of %s failed (%r); those windows will be re-processed", pending.offsets, exc
            )

    async def _drain(self) -> None:
        while self._pending:
            await self._finish(self._pending.popleft())

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish and commit in-flight batches before partitions move to another worker."""
        async with self._lock:
            await self._drain()
        self._state_ready.clear()  # the next assignment rebuilds it
        gone = {tp.partition for tp in revoked}
        for device, part in list(self._device_partition.items()):
            if part in gone:  # another worker owns this device now: its state is stale here
                self._device_partition.pop(device, None)
                self.state.pop(device, None)

    async def _wait_state_ready(self) -> None:
        try:
            await asyncio.wait_for(self._state_ready.wait(), RESTORE_TIMEOUT_S + 10)
        except TimeoutError:  # fail open: alert without the restored state rather than stall
            log.warning("alert state not rebuilt in time; alerting without it")
            self._state_ready.set()

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Rebuild the alert state from the alerts topic (includes other workers' alerts)."""
        self.health.assigned_partitions = len(assigned)
        try:
            await self._restore_state()
        finally:
            self._state_ready.set()

    async def _restore_state(self) -> None:
        s = self.settings
        try:
            alerts = await asyncio.get_running_loop().run_in_executor(
                None, read_recent_alerts, s.bootstrap, s.topics.alerts, s.security
            )
        except Exception as exc:  # fail open: an alert may repeat, none is lost
            log.warning("alert state not restored from %s: %r", s.topics.alerts, exc)
            return
        restored = fold_alerts(alerts, self.processor.policy.cooldown_s)
        for device, entry in restored.items():
            current = self.state.get(device)
            if current is None or float(current["ts"]) <= entry["ts"]:
                self.state[device] = entry
        print(  # a lifecycle line, like the worker's other "[worker]" lines
            f"[worker] alert state: {len(restored)} devices restored from {len(alerts)} "
            f"alerts in {s.topics.alerts}",
            flush=True,
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            await report_consumer_state(
                self.consumer, self.settings.topics.windows, self.processor.metrics, self.health
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
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        await engine.run()

    asyncio.run(main())
    return 0
