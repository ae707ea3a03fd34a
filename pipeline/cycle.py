"""The one batch cycle: compute → alerts → deliver → (acks) → commit, for every engine.

An engine is a thin adapter: it turns what its consumer hands out into a list of
:class:`~pipeline.processor.InRecord` plus the offsets to commit once that batch is done, and
gives the cycle an output :class:`Sink` and a commit function. Everything that decides what
is delivered and when offsets may be committed lives here, once, and is unit-tested in-process
with fakes (``tests/unit/pipeline/test_cycle.py``):

* the first batch is announced (``worker.started_file``);
* compute runs inline for small batches (no thread hand-over) and on one scoring thread for
  larger ones; if it raises, the whole batch is dead-lettered (``scoring_error``), never lost;
* alerts are decided on the event loop (they touch per-device state);
* delivery is retried until every record is acknowledged; up to ``max_in_flight`` batches may
  await their acks while the next is computed, and **commits stay in batch order**: a batch's
  offsets are committed only after its own records and those of every earlier batch are
  acknowledged;
* while outputs await their acks, the health state knows since when the oldest of them has
  (:attr:`~pipeline.server.HealthState.undelivered_since`: ``/readyz`` fails after
  ``worker.delivery_stall_s``, ``ecg_delivery_stalled_seconds`` shows it), and every retry
  counts in ``ecg_delivery_retries_total``;
* :meth:`BatchCycle.drain` finishes and commits everything in flight (revocation, idle,
  shutdown); :meth:`BatchCycle.shutdown` does it within a time limit or fail-stops.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.lifecycle import announce_first_batch, fail_stop
from pipeline.output import deliver_with_retry
from pipeline.processor import BatchResult, InRecord, OutRecord, WindowProcessor
from pipeline.server import HealthState

__all__ = [
    "INLINE_BATCH",
    "MAX_IN_FLIGHT",
    "SHUTDOWN_DELIVERY_TIMEOUT_S",
    "BatchCycle",
    "Commit",
    "Sink",
]

log = logging.getLogger(__name__)

#: How long shutdown may spend finishing the delivery of the in-flight batches.
SHUTDOWN_DELIVERY_TIMEOUT_S = 15.0

#: Batches whose outputs may await their acks while the next one is computed. A produce
#: round trip with acks=all is long next to computing a batch, so with one batch in flight
#: the worker mostly waits (measured: docs/performance.md, "Pipelining").
MAX_IN_FLIGHT = 4

#: Batches up to this size are computed on the event loop itself. Handing a batch to the
#: scoring thread and back costs two GIL hand-overs (up to ``sys.getswitchinterval()`` each
#: while the other thread is busy); a small batch computes in less than that.
INLINE_BATCH = 200


class Sink(Protocol):
    """Where output records go: queue them, one awaitable acknowledgement per send."""

    async def send_all(self, records: Sequence[OutRecord]) -> Sequence[Awaitable[Any]]:
        """Queue ``records``; each returned awaitable resolves when the broker acked it."""
        ...

    def forget_metadata(self) -> None:
        """Drop cached partition metadata (called before a retry)."""
        ...


#: Commit the given offsets (an engine's own key type, e.g. aiokafka ``TopicPartition``).
Commit = Callable[[Mapping[Any, int]], Awaitable[None]]


@dataclass
class _InFlight:
    """A delivered-but-not-yet-acknowledged batch: its ack wait and its commit offsets."""

    task: asyncio.Task[None]
    offsets: Mapping[Any, int]
    result: BatchResult


async def _no_commit(offsets: Mapping[Any, int]) -> None:
    """For engines whose framework commits by itself once events are acked (Faust)."""


class BatchCycle:
    """Compute, alert, deliver and commit micro-batches in order.

    Parameters
    ----------
    processor : WindowProcessor
        The transport-agnostic batch logic.
    sink : Sink
        The output producer.
    health : HealthState
        Beaten once per batch (liveness); told since when outputs await their acks.
    commit : callable, optional
        ``await commit(offsets)`` once a batch (and every earlier one) is acknowledged;
        default: nothing (the engine's framework commits acked events itself).
    max_in_flight : int
        Batches that may await their acks at once; 0 makes :meth:`submit` return only once
        its batch is delivered (what an engine that acks events after its loop body needs).
    inline_batch : int
        Batches up to this size are computed on the event loop.
    started_file : str
        ``worker.started_file``, written at the first batch.
    commit_interval_s : float
        ``worker.commit_interval_s``: acknowledged batches' offsets are committed together at
        most this often (0: after every batch). A commit is a broker round trip; after a crash,
        at most this much more is re-processed. :meth:`drain` always commits.
    clock : callable
        Monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        processor: WindowProcessor,
        sink: Sink,
        health: HealthState,
        *,
        commit: Commit | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        inline_batch: int = INLINE_BATCH,
        started_file: str = "",
        commit_interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processor = processor
        self.sink = sink
        self.health = health
        self._commit = commit or _no_commit
        self.max_in_flight = max_in_flight
        self.inline_batch = inline_batch
        self.started_file = started_file
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self._in_flight: collections.deque[_InFlight] = collections.deque()
        self._started = False
        self.commit_interval_s = commit_interval_s
        self._clock = clock
        self._uncommitted: dict[Any, int] = {}
        self._last_commit = clock()
        # Start time of every delivery not yet acknowledged, oldest first (insertion order).
        self._undelivered: dict[int, float] = {}
        self._deliveries = itertools.count()
        self._alert_order = asyncio.Lock()

    @property
    def in_flight(self) -> int:
        """Batches delivered but not yet acknowledged and committed."""
        return len(self._in_flight)

    @property
    def has_work(self) -> bool:
        """Whether batches await their acks or acknowledged offsets await their commit."""
        return bool(self._in_flight or self._uncommitted)

    async def submit(
        self,
        batch: list[InRecord],
        offsets: Mapping[Any, int],
        state: MutableMapping[str, Any],
        enter: Callable[[int], None] | None = None,
    ) -> BatchResult:
        """Process one batch: compute, alert, start its delivery, commit what is done.

        Parameters
        ----------
        batch : list of InRecord
            The consumed messages, in order.
        offsets : mapping
            What to commit once this batch is acknowledged (next offset per partition).
        state : mutable mapping
            Per-device alert state (a dict, or the Faust table).
        enter : callable, optional
            Passed to :meth:`WindowProcessor.alerts`.

        Returns
        -------
        BatchResult
            The batch's outputs (delivered, or being delivered).
        """
        if not self._started:
            self._started = True
            announce_first_batch(self.started_file)
        self.health.beat()
        result = await self._compute(batch)
        alerts = self.processor.alerts(result, state, enter)
        task = asyncio.ensure_future(self._deliver_batch(result.scores + result.dlq, alerts))
        self._in_flight.append(_InFlight(task, offsets, result))
        while len(self._in_flight) > self.max_in_flight:  # commits stay in batch order
            await self._finish(self._in_flight.popleft())
        return result

    async def publish(self, records: Sequence[OutRecord]) -> None:
        """Deliver records that belong to no batch (the stale-feed timer's ``start``
        records); returns once every one is acknowledged (retrying as for batches)."""
        if records:
            await self._deliver(records)

    async def _compute(self, batch: list[InRecord]) -> BatchResult:
        try:
            if len(batch) <= self.inline_batch:  # small: skip two GIL hand-overs (latency)
                return self.processor.compute(batch)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self.processor.compute, batch)
        except Exception as exc:  # never reached for bad input; a bug must not stop us
            log.exception("batch processing failed: %r", exc)
            return self.processor.fail_batch(batch, f"internal error: {exc!r}")

    async def _deliver_batch(self, records: list[OutRecord], alerts: list[OutRecord]) -> None:
        """Deliver a batch's scores and dead letters, and its alerts after every earlier
        batch's alerts: a retried delivery must not let a later batch's ``update`` reach the
        alerts topic before the ``start`` it follows (scores go on in parallel)."""
        if not alerts:
            await self._deliver(records)
            return

        async def in_order() -> None:
            async with self._alert_order:  # FIFO: batches take it in the order they came
                await self._deliver(alerts)

        await asyncio.gather(self._deliver(records), in_order())

    async def _deliver(self, records: Sequence[OutRecord]) -> None:
        """Produce ``records``; retry until the broker acknowledged every one of them.

        The stall is timed from the first send, not the first failure: against a broker that
        is gone a send may hang for the producer's request timeout before it fails.
        """
        token = next(self._deliveries)
        self._undelivered[token] = self.health.clock()  # the clock the probe reads it with
        self._publish_undelivered()
        try:
            await deliver_with_retry(self.sink.send_all, records, self._on_retry)
        finally:
            del self._undelivered[token]
            self._publish_undelivered()

    def _publish_undelivered(self) -> None:
        self.health.undelivered_since = next(iter(self._undelivered.values()), None)

    def _on_retry(self) -> None:
        self.processor.metrics.delivery_retries.inc()
        self.sink.forget_metadata()

    async def _finish(self, pending: _InFlight) -> None:
        """Wait for a batch's acks, then commit its offsets (now, or with later ones)."""
        await pending.task
        self.processor.delivered(pending.result)
        # Batches finish in order, so a later batch's offset of a partition supersedes.
        self._uncommitted.update(pending.offsets)
        if self._clock() - self._last_commit >= self.commit_interval_s:
            await self._commit_now()

    async def _commit_now(self) -> None:
        if not self._uncommitted:
            return
        offsets, self._uncommitted = self._uncommitted, {}
        self._last_commit = self._clock()
        try:
            await self._commit(offsets)
        except Exception as exc:  # e.g. rebalanced away: the new owner re-processes (dupes)
            log.warning(
                "commit of %s failed (%r); those windows will be re-processed", offsets, exc
            )

    async def drain(self) -> None:
        """Finish every batch in flight, oldest first, and commit all acknowledged offsets."""
        while self._in_flight:
            await self._finish(self._in_flight.popleft())
        await self._commit_now()

    async def shutdown(self, timeout_s: float = SHUTDOWN_DELIVERY_TIMEOUT_S) -> None:
        """:meth:`drain` within ``timeout_s``, or exit without committing (fail-stop)."""
        try:
            await asyncio.wait_for(self.drain(), timeout_s)
        except BaseException:
            fail_stop("could not finish the in-flight batches during shutdown")
        finally:
            self._executor.shutdown(wait=False)
