"""``ecgwatch ingest``: the beat-extraction stage between ``ecg.samples`` and ``ecg.windows``.

The Kafka adapter of :class:`pipeline.ingest_state.IngestProcessor` (which decides what is
produced and what may be committed): one aiokafka ``getmany`` per micro-batch, its window and
dead-letter records produced and acknowledged, then the offsets the processor allows
committed. A record is therefore committed only after the windows it completes are in
``ecg.windows`` (at-least-once), and never past a chunk a device's buffer still needs.

Scaling out: stages sharing ``ingest.group_id`` split the ``ecg.samples`` partitions, and a
device's chunks (keyed by its id) stay in one partition, so each device is served by one
stage. On an assignment the stage reads each device's newest window (``ecg.windows``' newest,
and the compacted ``ecg.ingest.state`` the stage writes before each commit) so that beats
found again in re-consumed chunks are not produced twice and the beat counter goes on
(``pipeline.ingest_state``); if that cannot be read, the stage stops rather than reuse a
``seq``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from detector.beats import POLARITY_CHECK_S, BeatExtractor, BeatRecipe
from pipeline.decode import decode_records
from pipeline.engine import close_client, consumer_kwargs, producer_kwargs
from pipeline.feed_restore import read_newest_in_topic
from pipeline.ingest_state import IngestProcessor
from pipeline.lifecycle import arm_shutdown_watchdog, consume_batches, fail_stop, freeze_heap
from pipeline.logs import throttle_client_logs
from pipeline.output import BatchProducer, deliver_with_retry
from pipeline.samples import INGEST_REJECT_REASONS
from pipeline.server import HealthState
from pipeline.settings import WorkerSettings

__all__ = ["IngestCollector", "IngestStage", "newest_windows", "run_ingest", "warm_up"]

log = logging.getLogger(__name__)

#: How often idle devices are looked for and the heartbeat ticks.
HOUSEKEEPING_S = 1.0
#: Devices' beat counters go to the state topic at most this often (and on revocation and
#: shutdown); the windows read back on assignment cover the minutes since.
STATE_INTERVAL_S = 10.0
#: Most records read back from the state topic (compacted: about one per device).
STATE_READ_MAX = 1_000_000
#: Attempts at reading the newest windows on an assignment before the stage gives up.
RESTORE_ATTEMPTS = 3


def warm_up(recipe: BeatRecipe) -> None:
    """A synthetic segment through an extractor, past its polarity decision: the first
    detection, polarity look and decision each cost several times a later one (imports,
    filter designs, caches), which would land on the first devices' beats."""
    fs = 250.0
    t = np.arange(int((POLARITY_CHECK_S + recipe.span_s) * fs)) / fs
    BeatExtractor(fs, recipe).feed(-np.exp(-(((t % 0.8) - 0.1) ** 2) / 2e-4))


def newest_windows(settings: WorkerSettings) -> list[dict[str, tuple[int, float]]]:
    """Per device, ``(seq, ts)`` of its newest window produced, as the newest windows in
    ``ecg.windows`` say and as the compacted state topic says (two readings: of both,
    :meth:`IngestProcessor.restore` keeps the higher ``seq``). Blocking.

    Only windows that decode are counted (another producer's garbage is no beat of ours).
    """
    s = settings
    found = read_newest_in_topic(s.bootstrap, s.topics.windows, s.security)
    batch = decode_records([rec for rec, _ in found], max_bytes=s.max_message_bytes)
    windows = {d: (q, t) for d, q, t in zip(batch.device_id, batch.seq, batch.ts, strict=True)}
    counters: dict[str, tuple[int, float]] = {}
    state = read_newest_in_topic(
        s.bootstrap, s.topics.ingest_state, s.security, per_partition=STATE_READ_MAX
    )
    for rec, _ in state:
        try:
            doc = orjson.loads(rec.value or b"")
            device, seq, ts = str(doc["device_id"]), int(doc["seq"]), float(doc["ts"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed record of %s at offset %d", rec.topic, rec.offset)
            continue
        counters[device] = (seq, ts)
    return [windows, counters]


class IngestStage:
    """Consume ``ecg.samples``, produce beat windows and dead letters, commit safely.

    Parameters
    ----------
    settings : WorkerSettings
        Kafka address and security, topics, ``ingest.*``.
    processor : IngestProcessor
    health : HealthState
        Partition assignment, heartbeat and delivery stall for the probes.
    """

    def __init__(
        self, settings: WorkerSettings, processor: IngestProcessor, health: HealthState
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.health = health
        self.consumer: Any = None
        self._sink: BatchProducer | None = None
        self._consumed: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._last_commit = 0.0
        self._last_state = 0.0
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        # One batch, commit or state write at a time (the loop and the housekeeping timer).
        self._lock = asyncio.Lock()

    def stop(self) -> None:
        """Finish the current batch, commit, and return from :meth:`run`."""
        self._stop.set()

    async def run(self) -> None:
        """Run until :meth:`stop`."""
        s = self.settings
        warm_up(self.processor.recipe)
        freeze_heap()  # the detector's libraries: no full-collection pauses on the loop
        group = dataclasses.replace(s, group_id=s.ingest.group_id)
        producer = AIOKafkaProducer(**producer_kwargs(s))
        self.consumer = AIOKafkaConsumer(**consumer_kwargs(group))
        await producer.start()
        self._sink = BatchProducer(producer)
        await self._sink.warm([s.topics.windows, s.topics.samples_dlq, s.topics.ingest_state])
        self.consumer.subscribe([s.topics.samples], listener=_Listener(self))
        await self.consumer.start()
        chores = asyncio.ensure_future(self._housekeeping())
        try:
            await self._loop()
            async with self._lock:
                await self._commit(force=True)
        finally:
            chores.cancel()
            await close_client(self.consumer, "consumer")
            await close_client(producer, "producer")

    async def _loop(self) -> None:
        s = self.settings.ingest
        await consume_batches(
            self.consumer,
            self._stop,
            batch_size=s.batch_size,
            timeout_s=s.batch_timeout_s,
            lock=self._lock,
            ready=self._ready.wait,
            handle=self._handle,
            what="the ingest stage",
        )

    async def _handle(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        records = [m for msgs in fetched.values() for m in msgs]
        out = self.processor.process(records)
        if out:
            await self._deliver(out)
        for tp, msgs in fetched.items():
            self._consumed[tp.partition] = msgs[-1].offset + 1
        await self._commit()

    async def _deliver(self, out: list[Any]) -> None:
        assert self._sink is not None
        sink = self._sink
        self.health.undelivered_since = time.monotonic()
        try:
            await deliver_with_retry(sink.send_all, out, on_retry=sink.forget_metadata)
        finally:
            self.health.undelivered_since = None

    async def _commit(self, force: bool = False) -> None:
        """Write the moved beat counters (at most every :data:`STATE_INTERVAL_S` unless
        ``force``), then commit what the processor allows; everything produced is acknowledged
        by then. At most every ``worker.commit_interval_s`` unless ``force``."""
        now = time.monotonic()
        if not force and now - self._last_commit < self.settings.commit_interval_s:
            return
        self._last_commit = now
        if force or now - self._last_state >= STATE_INTERVAL_S:
            # Before the commit: a restart reading from the committed offsets finds every
            # counter at least this far.
            updates = self.processor.state_updates()
            if updates:
                await self._deliver(updates)
            self._last_state = now
        allowed = self.processor.committable(self._consumed)
        todo = {p: o for p, o in allowed.items() if self._committed.get(p) != o}
        if todo:
            topic = self.settings.topics.samples
            await self.consumer.commit({TopicPartition(topic, p): o for p, o in todo.items()})
            self._committed.update(todo)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            self.health.beat()
            self.processor.drop_idle()
            if self._ready.is_set():  # idle partitions too: counters and commits go out
                async with self._lock:
                    # Before the commit: an idle device's segment no longer holds it back.
                    pending = self.processor.take_pending()
                    if pending:
                        await self._deliver(pending)
                    await self._commit()

    # ------------------------------------------------------------------ rebalancing
    async def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Commit what is safe, then forget the revoked partitions' devices."""
        self._ready.clear()
        gone = {tp.partition for tp in revoked}
        try:
            async with self._lock:
                await self._commit(force=True)
        except Exception as exc:  # the next owner re-extracts from the last commit: no loss
            log.warning("commit on revocation failed: %r", exc)
        self.processor.revoke(gone)
        for p in gone:
            self._consumed.pop(p, None)
            self._committed.pop(p, None)

    async def on_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Learn the devices' newest windows before consuming (restart de-duplication)."""
        parts = {tp.partition for tp in assigned}
        t = self.settings.topics
        try:
            for attempt in range(1, RESTORE_ATTEMPTS + 1):
                try:
                    newest = await asyncio.get_running_loop().run_in_executor(
                        None, newest_windows, self.settings
                    )
                    break
                except Exception as exc:
                    log.warning("reading the newest windows failed (%d): %r", attempt, exc)
                    if attempt == RESTORE_ATTEMPTS:
                        # Without them the beat counters would start again at 0, and
                        # (device_id, seq) would name two beats: better not cut at all.
                        fail_stop(
                            f"cannot read the devices' newest windows from {t.windows} and "
                            f"{t.ingest_state}: {exc!r}; check the broker and those topics"
                        )
                    await asyncio.sleep(attempt)
            for reading in newest:
                self.processor.restore(reading)
            devices = len(set().union(*newest))
            print(
                f"[ingest] {len(parts)} partitions of {t.samples} assigned; {devices} "
                f"devices' newest windows read from {t.windows} and {t.ingest_state}",
                flush=True,
            )
        finally:
            # Ready (``/readyz``) only now: chunks consumed before the restore would be cut
            # without knowing which beats are already in ecg.windows.
            self.health.assigned_partitions = len(parts)
            self._ready.set()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: IngestStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.stage.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.stage.on_assigned(assigned)


class IngestCollector(Collector):  # type: ignore[misc]
    """The stage's metrics, read from :attr:`IngestProcessor.counts` at each scrape."""

    def __init__(self, processor: IngestProcessor) -> None:
        self.processor = processor

    def collect(self) -> Iterable[Any]:
        """Yield the metric families (names and meaning: docs/operations.md)."""
        c = self.processor.counts
        for name, value, doc in (
            ("ecg_ingest_chunks", c.chunks, "Sample chunks used"),
            ("ecg_ingest_samples", c.samples, "Samples fed to beat extraction"),
            ("ecg_ingest_beats", c.beats, "Beat windows produced to ecg.windows"),
            ("ecg_ingest_beats_skipped", c.beats_skipped, "Beats found again after a restart"),
            ("ecg_ingest_rejected_intervals", c.rejected_intervals, "RR outside the recipe"),
            ("ecg_ingest_segments", c.segments, "Device segments started"),
            (
                "ecg_ingest_segments_inverted",
                c.segments_inverted,
                "Segments turned over to the model's polarity",
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        rejected = CounterMetricFamily(
            "ecg_ingest_rejected", "Chunks dead-lettered, by reason", labels=["reason"]
        )
        # Every reason from the start, at 0: rate() and the dashboard see the first rejection
        # of a reason as an increase, not as a series appearing.
        counts = dict.fromkeys(INGEST_REJECT_REASONS, 0) | c.rejected
        for reason, n in sorted(counts.items()):
            rejected.add_metric([reason], n)
        yield rejected
        devices = sum(1 for d in self.processor.devices.values() if d.segment is not None)
        yield GaugeMetricFamily("ecg_ingest_devices", "Devices with buffered signal", devices)


def run_ingest(settings: WorkerSettings, processor: IngestProcessor) -> int:
    """Run the stage until SIGINT/SIGTERM (metrics on ``ingest.metrics_port``); exit code."""
    from pipeline.server import MetricsServer

    health = HealthState(model_loaded=True, delivery_stall_s=settings.delivery_stall_s)
    throttle_client_logs()
    registry = CollectorRegistry()
    registry.register(IngestCollector(processor))
    server = None
    if settings.ingest.metrics_port:
        server = MetricsServer(
            registry,
            health,
            settings.metrics_host,
            settings.ingest.metrics_port,
            setting="ingest.metrics_port",
        ).start()

    async def main() -> None:
        stage = IngestStage(settings, processor, health)
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            arm_shutdown_watchdog()
            stage.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await stage.run()

    print(
        f"[ingest] consuming {settings.topics.samples} from {settings.bootstrap} "
        f"(group {settings.ingest.group_id}); windows to {settings.topics.windows}, dead "
        f"letters to {settings.topics.samples_dlq}; metrics on "
        f":{server.port if server else '-'}",
        flush=True,
    )
    try:
        asyncio.run(main())
    finally:
        if server is not None:
            server.stop()
    return 0
