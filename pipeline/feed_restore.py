"""What a new owner of ``ecg.windows`` partitions learns of their devices before consuming.

A worker tracks a device's feed once it consumes one of its windows (``pipeline.feeds``). A
device that fell silent shortly before a restart or rebalance sends nothing the new owner
could consume: without more, it would never be flagged. So on every assignment the engines
read the newest windows *before* the group's committed offset of each assigned partition (at
most :data:`SEED_PER_PARTITION` each; already processed, so nothing is scored again) and seed
the feed watch with each device's newest one: its ``seq`` and ``ts``, and as "last seen" the
message's Kafka timestamp (no later than now). A device that is still sending is seen again
as soon as its newer windows are consumed; one that is not is flagged ``stale_after_s`` after
that timestamp, once the worker has caught up with the partition.

Best effort, like the alert-state restore: a failure is logged and the worker goes on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.processor import InRecord, WindowProcessor
from pipeline.security import KafkaSecurity
from pipeline.settings import WorkerSettings

__all__ = [
    "SEED_PER_PARTITION",
    "SEED_TIMEOUT_S",
    "read_newest_before_committed",
    "read_newest_in_topic",
    "read_newest_per_key",
    "seed_feeds",
]

log = logging.getLogger(__name__)

#: Newest already-processed windows read per assigned partition.
SEED_PER_PARTITION = 5_000
#: Longest one read may take.
SEED_TIMEOUT_S = 10.0


def read_newest_before_committed(
    bootstrap: str,
    topic: str,
    group_id: str,
    partitions: Iterable[int],
    security: KafkaSecurity,
    *,
    per_partition: int = SEED_PER_PARTITION,
    timeout_s: float = SEED_TIMEOUT_S,
) -> list[tuple[InRecord, float]]:
    """Per device key, the newest message before the group's committed offset, with its
    Kafka timestamp (epoch seconds). Blocking (kafka-python; run it in a thread).

    Messages without a key are skipped (the documented key is the device id).
    """
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), **security.client_kwargs())
    try:
        # kafka-python 3: {group: {TopicPartition: OffsetAndMetadata}}.
        committed = admin.list_group_offsets({group_id: None}).get(group_id, {})
    finally:
        admin.close()
    ends = {
        tp.partition: int(meta.offset)
        for tp, meta in committed.items()
        if tp.topic == topic and tp.partition in set(partitions) and meta.offset > 0
    }
    return read_newest_per_key(
        bootstrap, topic, ends, security, per_partition=per_partition, timeout_s=timeout_s
    )


def read_newest_in_topic(
    bootstrap: str,
    topic: str,
    security: KafkaSecurity,
    *,
    per_partition: int = SEED_PER_PARTITION,
    timeout_s: float = SEED_TIMEOUT_S,
) -> list[tuple[InRecord, float]]:
    """Per device key, the newest message of ``topic`` (all partitions, the newest
    ``per_partition`` of each), with its Kafka timestamp. Blocking (kafka-python)."""
    from kafka import KafkaConsumer, TopicPartition

    probe = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,  # (also keeps kafka-python from warning that it disables it)
        **security.client_kwargs(),
    )
    try:
        parts = probe.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = {tp.partition: int(off) for tp, off in probe.end_offsets(tps).items() if off > 0}
    finally:
        probe.close()
    return read_newest_per_key(
        bootstrap, topic, ends, security, per_partition=per_partition, timeout_s=timeout_s
    )


def read_newest_per_key(
    bootstrap: str,
    topic: str,
    ends: Mapping[int, int],
    security: KafkaSecurity,
    *,
    per_partition: int = SEED_PER_PARTITION,
    timeout_s: float = SEED_TIMEOUT_S,
) -> list[tuple[InRecord, float]]:
    """Per key, the newest message before ``ends`` (partition -> offset) of ``topic``, reading
    at most the ``per_partition`` messages before each end. Blocking (kafka-python)."""
    from kafka import KafkaConsumer, TopicPartition

    if not ends:
        return []
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=10_000,
        **security.client_kwargs(),
    )
    newest: dict[bytes, tuple[InRecord, float]] = {}
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(0, ends[tp.partition] - per_partition))
        todo = {tp: ends[tp.partition] for tp in tps}
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            for tp, msgs in consumer.poll(timeout_ms=200).items():
                stop = todo.get(tp, -1)
                for m in msgs:
                    if m.offset >= stop or m.key is None:
                        continue
                    rec = InRecord(m.topic, m.partition, m.offset, m.key, m.value, m.headers)
                    newest[m.key] = (rec, m.timestamp / 1000.0)
            for tp in [tp for tp, stop in todo.items() if consumer.position(tp) >= stop]:
                del todo[tp]
        if todo:
            log.warning("reading the newest of %s stopped after %.0f s", topic, timeout_s)
    finally:
        consumer.close()
    return list(newest.values())


async def seed_feeds(
    settings: WorkerSettings,
    processor: WindowProcessor,
    partitions: set[int],
    committed: Mapping[int, int] | None = None,
) -> None:
    """On an assignment (both engines): read the assigned partitions' newest processed windows
    off the event loop and seed the processor's feed watch with their devices. A failure is
    logged; such a device is then flagged only once it sends again.

    ``committed`` (partition -> the group's committed offset when the partitions were
    assigned) spares the lookup of those offsets, and pins them: a caller that consumes while
    the seed is read still gets the windows before its assignment, not the newest it has
    itself processed meanwhile.
    """
    s = settings
    if committed is None:
        read: Any = functools.partial(
            read_newest_before_committed,
            s.bootstrap,
            s.topics.windows,
            s.group_id,
            partitions,
            s.security,
        )
    else:
        ends = {p: int(o) for p, o in committed.items() if p in partitions and o > 0}
        read = functools.partial(
            read_newest_per_key, s.bootstrap, s.topics.windows, ends, s.security
        )
    try:
        newest = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, read), SEED_TIMEOUT_S + 10
        )
    except Exception as exc:
        log.warning("feed seed from %s failed: %r", s.topics.windows, exc)
        return
    added = processor.seed_feeds(newest)
    print(f"[worker] feed watch: {added} devices seeded from {s.topics.windows}", flush=True)
