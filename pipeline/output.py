"""Batched output production with aiokafka: records grouped per partition into record batches.

``AIOKafkaProducer.send`` costs a coroutine, a partitioner call and an accumulator lookup per
record; at tens of thousands of score records a second that is most of a core. Here the
records of a micro-batch are grouped by (topic, partition) and appended to ``BatchBuilder``
objects (one C-level append per record), each submitted once with ``send_batch``. Keyed
records go to the partition the default (murmur2) partitioner would choose, cached per key,
so consumers see the same placement as with ``send``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from pipeline.processor import OutRecord

__all__ = ["BatchProducer", "deliver_with_retry"]

log = logging.getLogger(__name__)


class BatchProducer:
    """Produce many records and wait for all acknowledgements.

    Parameters
    ----------
    producer : aiokafka.AIOKafkaProducer
        A started producer (``acks="all"`` for at-least-once).
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self._partitions: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, bytes], int] = {}
        self._round_robin: dict[str, itertools.cycle[int]] = {}
        self._partitioner = DefaultPartitioner()

    async def _partition_list(self, topic: str) -> list[int]:
        parts = self._partitions.get(topic)
        if parts is None:
            parts = sorted(await self.producer.partitions_for(topic))
            self._partitions[topic] = parts
            self._round_robin[topic] = itertools.cycle(parts)
        return parts

    async def warm(self, topics: Iterable[str]) -> None:
        """Fetch the partitions of ``topics`` now rather than on the first send to each (a
        metadata round trip that would otherwise delay the first records)."""
        for topic in topics:
            await self._partition_list(topic)

    def _partition(self, topic: str, key: bytes | None, parts: list[int]) -> int:
        if key is None:  # unkeyed (never for scores/alerts): spread evenly
            return next(self._round_robin[topic])
        p = self._cache.get((topic, key))
        if p is None:
            p = self._partitioner(key, parts, parts)
            if len(self._cache) > 100_000:  # bound memory with many distinct keys
                self._cache.clear()
            self._cache[(topic, key)] = p
        return p

    async def send_all(self, records: Sequence[OutRecord]) -> list[asyncio.Future[Any]]:
        """Queue ``records``; returns one future per submitted record batch.

        The futures resolve when the broker acknowledged the batch (or fail).
        """
        groups: dict[tuple[str, int], list[OutRecord]] = {}
        for topic in {r.topic for r in records}:
            await self._partition_list(topic)
        for r in records:
            parts = self._partitions[r.topic]
            groups.setdefault((r.topic, self._partition(r.topic, r.key, parts)), []).append(r)
        futures = []
        for (topic, partition), group in groups.items():
            for batch in self._batches(group):
                futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        return futures

    def _batches(self, records: Iterable[OutRecord]) -> Iterable[Any]:
        batch = self.producer.create_batch()
        empty = True
        for r in records:
            if batch.append(key=r.key, value=r.value, timestamp=None) is None:
                if empty:  # a single record over the batch limit: let the broker judge it
                    raise ValueError(f"record of {len(r.value)} bytes does not fit a batch")
                yield batch
                batch = self.producer.create_batch()
                batch.append(key=r.key, value=r.value, timestamp=None)
            empty = False
        if not empty:
            yield batch

    def forget_metadata(self) -> None:
        """Re-read partition counts on the next send (after an error, topics may change)."""
        self._partitions.clear()
        self._cache.clear()


async def deliver_with_retry(
    send_all: Callable[[Sequence[OutRecord]], Awaitable[Sequence[Awaitable[Any]]]],
    records: Sequence[OutRecord],
    on_retry: Callable[[], None] | None = None,
) -> None:
    """Produce ``records`` and wait until the broker acknowledged every one of them.

    On a failure everything is sent again after an exponential back-off (capped at 30 s),
    forever: the caller's offsets must not be committed before this returns, and re-sent
    records are identifiable duplicates. Cancellation propagates.

    Parameters
    ----------
    send_all : callable
        Enqueues the records and returns one awaitable acknowledgement per send.
    records : sequence of OutRecord
    on_retry : callable, optional
        Called before each retry (e.g. to drop cached partition metadata and count the retry;
        :class:`pipeline.cycle.BatchCycle` does both).
    """
    attempt = 0
    while True:
        try:
            await asyncio.gather(*(await send_all(records)))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # broker hiccup: resend all (duplicates are identifiable)
            attempt += 1
            delay = min(30.0, 0.5 * 2**attempt)
            log.error(
                "delivering %d records failed (%r); retry %d in %.1f s",
                len(records),
                exc,
                attempt,
                delay,
            )
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(delay)
