"""Read records back from an output topic (``ecgwatch alerts``, tests, the demo)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson

from pipeline.security import KafkaSecurity

__all__ = ["format_alert", "read_records"]


class _DropCancelledRefresh(logging.Filter):
    """Drop kafka-python's ERROR for a metadata refresh cancelled by ``close()``.

    Closing a consumer while its background metadata refresh is in flight cancels the
    request, and kafka-python 3 logs that as ``ERROR Metadata refresh: failed Cancelled``.
    A cancelled refresh is not a failure; every other refresh error still gets through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            record.msg == "Metadata refresh: failed %s"
            and len(args) == 1
            and type(args[0]).__name__ == "Cancelled"
        )


def _quiet_cancelled_refresh() -> None:
    # Installed on first use, not at import (no import-time side effects).
    logger = logging.getLogger("kafka.cluster")
    if not any(isinstance(f, _DropCancelledRefresh) for f in logger.filters):
        logger.addFilter(_DropCancelledRefresh())


def read_records(
    bootstrap: str,
    topic: str,
    *,
    from_beginning: bool = True,
    timeout_s: float | None = None,
    idle_timeout_s: float | None = None,
    max_records: int | None = None,
    security: KafkaSecurity | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield decoded JSON records of ``topic`` (no consumer group; nothing is committed).

    Parameters
    ----------
    timeout_s : float, optional
        Stop after this many seconds in total.
    idle_timeout_s : float, optional
        Stop after this many seconds without a new record.
    max_records : int, optional
        Stop after this many records.
    security : KafkaSecurity, optional
        TLS / SASL settings (default: plaintext).
    """
    from kafka import KafkaConsumer, TopicPartition

    _quiet_cancelled_refresh()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=200,
        **(security or KafkaSecurity()).client_kwargs(),
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        if from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
        start = last = time.monotonic()
        count = 0
        while True:
            batches = consumer.poll(timeout_ms=200)
            for msgs in batches.values():
                for msg in msgs:
                    last = time.monotonic()
                    count += 1
                    record = orjson.loads(msg.value)
                    record["_partition"], record["_offset"] = msg.partition, msg.offset
                    yield record
                    if max_records is not None and count >= max_records:
                        return
            now = time.monotonic()
            if timeout_s is not None and now - start > timeout_s:
                return
            if idle_timeout_s is not None and now - last > idle_timeout_s:
                return
    finally:
        consumer.close()


def format_alert(a: dict[str, Any]) -> str:
    """One readable line per alert."""
    when = time.strftime("%H:%M:%S", time.localtime(float(a.get("ts", 0))))
    return (
        f"{when} {a.get('severity', '?').upper():8} device {a.get('device_id')} "
        f"seq {a.get('seq')}: score {a.get('score', 0):.4f} > threshold "
        f"{a.get('threshold', 0):.4f} (model {a.get('model_version')})"
    )
