"""Read records back from an output topic (``ecgwatch alerts``, tests, the demo)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson

from pipeline.errors import PipelineError
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
    last_per_partition: int | None = None,
    until_end: bool = False,
    skip_invalid: bool = False,
    timeout_s: float | None = None,
    idle_timeout_s: float | None = None,
    max_records: int | None = None,
    security: KafkaSecurity | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield decoded JSON records of ``topic`` (no consumer group; nothing is committed).

    Each record gets ``_partition`` and ``_offset`` keys.

    Parameters
    ----------
    from_beginning : bool, default True
        Start at each partition's first record; False: only records written from now on.
    last_per_partition : int, optional
        Start at the newest ``last_per_partition`` records of each partition instead.
    until_end : bool, default False
        Stop at the end offsets seen at the start (records written later are not read).
    skip_invalid : bool, default False
        Skip records that are not a JSON object instead of raising.
    timeout_s : float, optional
        Stop after this many seconds in total.
    idle_timeout_s : float, optional
        Stop after this many seconds without a new record.
    max_records : int, optional
        Stop after this many records.
    security : KafkaSecurity, optional
        TLS / SASL settings (default: plaintext).
    """
    _quiet_cancelled_refresh()
    consumer = _consumer(bootstrap, security, timeout_s)
    try:
        tps, end = _start(consumer, topic, from_beginning, last_per_partition, until_end)
        todo = {tp for tp in tps if consumer.position(tp) < end[tp]} if until_end else set(tps)
        start = last = time.monotonic()
        count = 0
        while todo:
            batches = consumer.poll(timeout_ms=200)
            for tp, msgs in batches.items():
                for msg in msgs:
                    if until_end and msg.offset >= end[tp]:
                        continue
                    last = time.monotonic()
                    record = _decode(msg, skip_invalid)
                    if record is None:
                        continue
                    count += 1
                    yield record
                    if max_records is not None and count >= max_records:
                        return
            if until_end:
                todo = {tp for tp in todo if consumer.position(tp) < end[tp]}
            now = time.monotonic()
            if timeout_s is not None and now - start > timeout_s:
                return
            if idle_timeout_s is not None and now - last > idle_timeout_s:
                return
    finally:
        consumer.close()


#: How long reading waits for the broker at the start (at most; ``timeout_s`` may be shorter).
BOOTSTRAP_TIMEOUT_S = 30.0


def _consumer(
    bootstrap: str, security: KafkaSecurity | None, timeout_s: float | None = None
) -> Any:
    """A consumer outside any group: it commits nothing and is assigned partitions itself.

    Raises
    ------
    PipelineError
        When the broker cannot be reached within ``timeout_s`` (or 30 s).
    """
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    wait_s = BOOTSTRAP_TIMEOUT_S if timeout_s is None else min(BOOTSTRAP_TIMEOUT_S, timeout_s)
    try:
        return KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=200,
            max_poll_records=10_000,
            bootstrap_timeout_ms=max(1000, int(wait_s * 1000)),
            **(security or KafkaSecurity()).client_kwargs(),
        )
    except KafkaError as exc:
        raise PipelineError(
            f"cannot reach Kafka at {bootstrap} within {wait_s:g} s ({type(exc).__name__}): "
            "start a broker (`ecgwatch broker start`) or pass the right --bootstrap HOST:PORT"
        ) from exc


def _start(
    consumer: Any,
    topic: str,
    from_beginning: bool,
    last_per_partition: int | None,
    until_end: bool,
) -> tuple[list[Any], dict[Any, int]]:
    """Assign every partition of ``topic`` and seek to where reading starts.

    Returns the partitions and the end offsets seen now when ``until_end`` or
    ``last_per_partition`` needs them (empty otherwise).
    """
    from kafka import TopicPartition

    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    end = consumer.end_offsets(tps) if until_end or last_per_partition is not None else {}
    if last_per_partition is not None:
        begin = consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - last_per_partition))
    elif from_beginning:
        consumer.seek_to_beginning(*tps)
    else:
        consumer.seek_to_end(*tps)
    return tps, end


def _decode(msg: Any, skip_invalid: bool) -> dict[str, Any] | None:
    """The JSON object of one message with its ``_partition`` and ``_offset``; None for a
    message that is not one when ``skip_invalid``."""
    try:
        record = orjson.loads(msg.value)
        record["_partition"], record["_offset"] = msg.partition, msg.offset
    except (orjson.JSONDecodeError, TypeError):
        if skip_invalid:
            return None
        raise
    return record  # type: ignore[no-any-return]


def format_alert(a: dict[str, Any]) -> str:
    """One readable line per alert."""
    when = time.strftime("%H:%M:%S", time.localtime(float(a.get("ts", 0))))
    return (
        f"{when} {a.get('severity', '?').upper():8} device {a.get('device_id')} "
        f"seq {a.get('seq')}: score {a.get('score', 0):.4f} > threshold "
        f"{a.get('threshold', 0):.4f} (model {a.get('model_version')})"
    )
