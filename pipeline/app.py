"""The Faust application: one agent on ``ecg.windows`` scoring micro-batches.

Delivery is at-least-once. ``stream.take_events`` acks a batch's events only after the loop
body finishes, and the body finishes only after every output record of the batch (scores,
alerts, dead letters) is acknowledged by the broker; Faust commits acked offsets only. So a
crash at any point re-delivers, never drops. ``exactly_once`` is not used (open upstream bugs).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.streams import _current_event

from pipeline.lag import report_consumer_state
from pipeline.lifecycle import announce_first_batch, fail_stop
from pipeline.output import deliver_with_retry
from pipeline.processor import InRecord, OutRecord, WindowProcessor
from pipeline.server import HealthState
from pipeline.settings import WorkerSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)

#: How long a cancelled agent may still spend finishing the delivery of its current batch.
SHUTDOWN_DELIVERY_TIMEOUT_S = 15.0


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
    # Alert state per device: co-partitioned with ecg.windows (both keyed by device id).
    state = app.Table("alert-state", default=None, partitions=partitions)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
    metrics = processor.metrics

    async def send_all(records: Sequence[OutRecord]) -> list[Any]:
        return [await app.producer.send(r.topic, r.key, r.value, None, None, None) for r in records]

    started = False

    async def handle(events: Sequence[Any]) -> None:
        """Process one batch completely: compute, alert, deliver, then record latency."""
        nonlocal started
        if not started:
            started = True
            announce_first_batch(settings.started_file)
        loop = asyncio.get_running_loop()
        batch = _in_records(events)
        try:
            result = await loop.run_in_executor(executor, processor.compute, batch)
        except Exception as exc:  # never reached for bad input; a bug must not stop us
            log.exception("batch processing failed: %r", exc)
            result = processor.fail_batch(batch, f"internal error: {exc!r}")

        def enter(pos: int) -> None:
            # Table writes go to the changelog partition of the window's own event.
            _current_event.set(weakref.ref(events[pos]))

        alerts = processor.alerts(result, state, enter)
        await deliver_with_retry(send_all, result.scores + alerts + result.dlq)
        processor.delivered(result)

    @app.agent(windows, name="score-windows")
    async def score_windows(stream: Any) -> None:
        # take_events acks the batch's events when this loop body ends, however it ends
        # (even by an exception). So the body either completes the batch (outputs
        # acknowledged by the broker) or ends the process before anything can be committed.
        async for events in stream.take_events(
            settings.batch_size, within=settings.batch_timeout_s
        ):
            await _complete(handle(events))

    @app.timer(interval=1.0)
    async def heartbeat() -> None:
        await report_consumer_state(app.consumer, settings.topics.windows, metrics, health)

    return app


def _faust_app(settings: WorkerSettings, partitions: int) -> faust.App:
    """The app itself: raw bytes in and out, acks from all replicas, in-memory tables."""
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
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        table_standby_replicas=0,
    )


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
