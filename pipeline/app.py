"""The Faust application: one agent on ``ecg.windows`` scoring micro-batches.

The adapter between Faust and :class:`pipeline.cycle.BatchCycle` (the batch cycle both
engines share). Delivery is at-least-once: ``stream.take_events`` acks a batch's events only
after the loop body finishes, and the body finishes only after every output record of the
batch (scores, alerts, dead letters) is acknowledged by the broker (the cycle runs with no
batch in flight here); Faust commits acked offsets only. So a crash at any point re-delivers,
never drops. ``exactly_once`` is not used (open upstream bugs).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import faust
from faust.streams import _current_event

from pipeline.alert_state import RESTORE_TIMEOUT_S, fold_stale, read_recent_alerts
from pipeline.cycle import SHUTDOWN_DELIVERY_TIMEOUT_S, BatchCycle
from pipeline.feed_restore import seed_feeds
from pipeline.feeds import FEED_CHECK_INTERVAL_S
from pipeline.lag import CatchUp, report_consumer_state
from pipeline.lifecycle import fail_stop
from pipeline.output import BatchProducer
from pipeline.processor import InRecord, OutRecord, WindowProcessor
from pipeline.server import HealthState
from pipeline.settings import WorkerSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: WorkerSettings,
    processor: WindowProcessor,
    health: HealthState,
    *,
    partitions: int,
) -> faust.App:
    """Build the Faust app for one worker.

    Parameters
    ----------
    settings : WorkerSettings
        Kafka address, topics, batch size/timeout, group id.
    processor : WindowProcessor
        The batch logic (decode → score → records).
    health : HealthState
        Updated with partition assignment and an event-loop heartbeat.
    partitions : int
        Partition count of the windows topic (the alert-state table is co-partitioned).
    """
    app = _faust_app(settings, partitions)
    windows = app.topic(
        settings.topics.windows, key_serializer="raw", value_serializer="raw", internal=False
    )
    # Alert state per device (its episode: a JSON dict, see pipeline.policy): co-partitioned
    # with ecg.windows (both keyed by device id); Faust restores it from its changelog on
    # every assignment, so an open episode survives a restart or a rebalance.
    state = app.Table("alert-state", default=None, partitions=partitions)
    processor.alert_state = state
    metrics = processor.metrics
    # No batch in flight: take_events acks the events when the loop body ends, so the body
    # must end only once the batch is delivered; Faust commits the acked offsets itself.
    # Every batch is computed on the loop: nothing else runs on it meanwhile, and Faust's
    # consumer already has a thread of its own, so a scoring thread would be a third one
    # taking turns for the GIL (docs/performance.md, "The Faust engine").
    cycle = BatchCycle(
        processor,
        _FaustSink(app),
        health,
        max_in_flight=0,
        inline_batch=settings.batch_size,
        started_file=settings.started_file,
    )

    feeds = _FeedHooks(app, settings, processor, cycle)

    async def handle(events: Sequence[Any]) -> None:
        """Process one batch completely: compute, alert, deliver, record latency."""

        def enter(pos: int) -> None:
            # Table writes go to the changelog partition of the window's own event.
            _current_event.set(weakref.ref(events[pos]))

        await cycle.submit(_in_records(events), {}, state, enter)
        # The table's changelog records are sent "soon" by Faust's buffer; before the events
        # are acked (the loop body's end), wait until they are written, so a kill -9 leaves
        # either the state in the changelog or the windows to be consumed again.
        await app.producer.flush()

    @app.agent(windows, name="score-windows")
    async def score_windows(stream: Any) -> None:
        # take_events acks the batch's events when this loop body ends, however it ends
        # (even by an exception). So the body either completes the batch (outputs
        # acknowledged by the broker) or ends the process before anything can be committed.
        async for events in stream.take_events(
            settings.batch_size, within=settings.batch_timeout_s
        ):
            await _complete(handle(events))

    catch_up = CatchUp()

    @app.timer(interval=1.0)
    async def heartbeat() -> None:
        feeds.lagging = await report_consumer_state(
            app.consumer, settings.topics.windows, metrics, health, catch_up
        )

    @app.timer(interval=FEED_CHECK_INTERVAL_S)
    async def feed_timer() -> None:
        await feeds.check()

    return app


class _FeedHooks:
    """The stale-feed side of the Faust engine (``pipeline.feeds``).

    Faust tables can be written only from within a stream event, and a timer has none, so the
    feed state is the processor's in-memory :class:`~pipeline.feeds.FeedWatch`, as in the batch
    engine: on assignment, open ``feed_stale`` episodes are read back from the alerts topic in
    the background. The agent does not wait for that (holding Faust's first batch across its
    recovery and seek is what its restart bug feeds on, docs/configuration.md "Engines"): a
    device that sent meanwhile gets its restored episode's ``end`` when the read completes.
    On revocation the moved partitions' devices are forgotten, after any ``start`` being
    delivered is acknowledged (the lock).
    """

    def __init__(
        self, app: faust.App, settings: WorkerSettings, processor: WindowProcessor, cycle: Any
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.cycle = cycle
        self.lagging: set[int] = set()
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._restoring: asyncio.Future[None] | None = None
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    async def check(self) -> None:
        """One timer tick: deliver the ``start`` of every feed gone silent (not before the
        assignment's open stale episodes are restored: it would start them again)."""
        if not self._ready.is_set():
            return
        async with self._lock:
            await self.cycle.publish(self.processor.stale_alerts(self.lagging))

    async def _on_assigned(self, sender: Any, assigned: Any, **kwargs: Any) -> None:
        # In the background: Faust awaits this signal inside its rebalance.
        self._ready.clear()
        windows = self.settings.topics.windows
        partitions = {tp.partition for tp in assigned if tp.topic == windows}
        self._restoring = asyncio.ensure_future(self._restore(partitions))

    async def _restore(self, partitions: set[int]) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        try:
            alerts = await asyncio.wait_for(
                loop.run_in_executor(
                    None, read_recent_alerts, s.bootstrap, s.topics.alerts, s.security
                ),
                RESTORE_TIMEOUT_S + 10,
            )
            async with self._lock:
                await self.cycle.publish(self.processor.restore_stale(fold_stale(alerts)))
            await seed_feeds(s, self.processor, partitions)
        except Exception as exc:  # fail open: an end may be missed, a start is not repeated
            log.warning("stale-feed state not restored: %r", exc)
        finally:
            self._ready.set()

    async def _on_revoked(self, sender: Any, revoked: Any, **kwargs: Any) -> None:
        async with self._lock:
            windows = self.settings.topics.windows
            self.processor.feeds.revoke(tp.partition for tp in revoked if tp.topic == windows)


def _faust_app(settings: WorkerSettings, partitions: int) -> faust.App:
    """The app itself: raw bytes in and out, acks from all replicas, in-memory tables."""
    # Faust creates its data directory without parents: a worker started in a fresh folder
    # would die at once on the default `.ecgwatch/worker`.
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.group_id,
        broker=[f"kafka://{h.strip()}" for h in settings.bootstrap.split(",")],
        broker_credentials=settings.security.faust_credentials(),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        topic_disable_leader=True,
        web_enabled=False,
        store="memory://",
        datadir=settings.data_dir,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        table_standby_replicas=0,
    )


class _FaustSink:
    """The cycle's output sink on the aiokafka producer Faust started.

    Faust's own ``producer.send`` is one coroutine and one await per record; the batch
    producer appends a batch's records per partition into record batches instead. The
    aiokafka producer is looked up on every send because Faust replaces it on a restart of
    its producer service.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._out: BatchProducer | None = None

    def _producer(self) -> BatchProducer:
        # Faust's started AIOKafkaProducer (its driver's accessor; no public one exists).
        inner = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        if self._out is None or self._out.producer is not inner:
            self._out = BatchProducer(inner)
        return self._out

    async def send_all(self, records: Sequence[OutRecord]) -> Sequence[Awaitable[Any]]:
        """Queue ``records``; one future per record batch (see :class:`BatchProducer`)."""
        return await self._producer().send_all(records)

    def forget_metadata(self) -> None:
        """Re-read partition counts on the next send."""
        if self._out is not None:
            self._out.forget_metadata()


def _in_records(events: Sequence[Any]) -> list[InRecord]:
    """The batch's messages as the processor takes them."""
    return [
        InRecord(
            e.message.topic,
            e.message.partition,
            e.message.offset,
            e.message.key,
            e.message.value,
            e.message.headers,
        )
        for e in events
    ]


async def _complete(batch: Coroutine[Any, Any, None]) -> None:
    """Run one batch to its end, even when the agent is cancelled meanwhile.

    A batch cancelled half-way would leave its events to be acked with outputs missing;
    so on cancellation (shutdown) the batch gets :data:`SHUTDOWN_DELIVERY_TIMEOUT_S` to
    finish, and anything else that goes wrong ends the process (fail-stop).
    """
    task = asyncio.ensure_future(batch)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        try:  # shutting down mid-batch: finish this batch first
            await asyncio.wait_for(task, SHUTDOWN_DELIVERY_TIMEOUT_S)
        except BaseException:
            fail_stop("could not finish a batch during shutdown")
        raise
    except BaseException as exc:
        fail_stop(f"unexpected error in the agent: {exc!r}")
