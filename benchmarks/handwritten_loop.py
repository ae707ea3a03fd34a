"""Two librdkafka baselines for ``ecgwatch bench`` (issue 13), both on ``confluent-kafka``.

* :func:`raw_librdkafka`: ``Consumer.consume(5000)`` and nothing per message, the consumption
  limit of librdkafka from Python.
* The hand-written loop, what a user would write instead of running ecgwatch (about sixty
  lines, :func:`run_loop` and :func:`score_records`): ``consume(5000)`` → ``orjson.loads``
  each → one NumPy pass of the model (the artifact's ``detector.score``, the NumPy fast path
  the worker uses on the CPU) → ``produce`` one JSON score record per window, the worker's
  fields and values → ``flush`` → ``commit``. At-least-once (offsets are committed only after
  every record of the batch is acknowledged), one process. No validation, no dead letters,
  no alerts, no metrics: that is the point of the comparison.

Run as ``python -m benchmarks.handwritten_loop BOOTSTRAP WINDOWS SCORES GROUP REGISTRY VERSION
COUNT OUT``: it scores ``COUNT`` windows, then writes ``{"windows", "first_at",
"peak_rss_mb"}`` to ``OUT`` (``first_at``: epoch time of the first consumed batch).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

__all__ = [
    "BATCH",
    "LoopResult",
    "consumer_config",
    "load_scorer",
    "main",
    "producer_config",
    "raw_librdkafka",
    "run_loop",
    "score_records",
]

#: Messages per ``consume`` call.
BATCH = 5000

#: ``windows (n, 140) float32 -> scores (n,)``.
ScoreFn = Callable[[np.ndarray], np.ndarray]


def consumer_config(bootstrap: str, group: str) -> dict[str, Any]:
    """An at-least-once consumer: offsets committed by hand, from the earliest record."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }


def producer_config(bootstrap: str) -> dict[str, Any]:
    """``acks=all`` like the worker; murmur2 places keys on the partitions the worker uses."""
    return {"bootstrap.servers": bootstrap, "acks": "all", "partitioner": "murmur2_random"}


def raw_librdkafka(bootstrap: str, topic: str, n: int) -> float:
    """Windows/s of ``Consumer.consume(5000)`` reading ``n`` records, first batch to last."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    conf = consumer_config(bootstrap, f"bench-raw-{uuid.uuid4().hex[:8]}")
    # The fetch sizes of the raw aiokafka consumer (benchmarks.kafka_io), so the two raw rows
    # differ in the client only; the loop keeps librdkafka's defaults, as a user's would.
    conf.update({"max.partition.fetch.bytes": 8 * 1024 * 1024, "fetch.max.bytes": 64 * 1024 * 1024})
    consumer = Consumer(conf)
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(parts)])
        count, t0 = 0, None
        while count < n:
            msgs = consumer.consume(BATCH, 1.0)
            if t0 is None and msgs:
                t0 = time.perf_counter()
            count += len(msgs)  # nothing per message: the consumption limit
        return count / (time.perf_counter() - (t0 or time.perf_counter()))
    finally:
        consumer.close()


def score_records(
    msgs: Sequence[Any], score: ScoreFn, threshold: float, version: str, now: Callable[[], float]
) -> list[tuple[bytes | None, bytes]]:
    """(key, JSON score record) of every message: one decode each, one scoring pass."""
    docs = [orjson.loads(m.value()) for m in msgs]
    scores = score(np.array([d["samples"] for d in docs], dtype=np.float32)).tolist()
    scored_at = now()
    return [
        (
            m.key(),
            orjson.dumps(
                {
                    "device_id": d["device_id"],
                    "seq": d["seq"],
                    "ts": float(d["ts"]),
                    "score": s,
                    "threshold": threshold,
                    "anomaly": s > threshold,
                    "model_version": version,
                    "scored_at": scored_at,
                }
            ),
        )
        for m, d, s in zip(msgs, docs, scores, strict=True)
    ]


@dataclass(frozen=True)
class LoopResult:
    """How many windows the loop scored and when it consumed its first batch (epoch s)."""

    windows: int
    first_at: float | None


def _produce(producer: Any, topic: str, key: bytes | None, value: bytes, on_delivery: Any) -> None:
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
            return
        except BufferError:  # the local queue is full: serve delivery reports, then retry
            producer.poll(0.1)


def run_loop(
    consumer: Any,
    producer: Any,
    scores_topic: str,
    score: ScoreFn,
    threshold: float,
    version: str,
    n: int,
    clock: Callable[[], float] = time.time,
) -> LoopResult:
    """Consume, score, produce, flush and commit, batch by batch, until ``n`` windows are done.

    ``consumer`` is subscribed already; offsets are committed (synchronously) only after
    ``flush`` saw every record of the batch acknowledged, so a crash repeats, never loses.
    """
    failed: list[Any] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(err)

    count, first_at = 0, None
    while count < n:
        msgs = consumer.consume(BATCH, 1.0)
        if not msgs:
            continue
        if first_at is None:
            first_at = clock()
        for m in msgs:
            if m.error() is not None:
                raise RuntimeError(f"consume failed: {m.error()}")
        for key, value in score_records(msgs, score, threshold, version, clock):
            _produce(producer, scores_topic, key, value, on_delivery)
        while producer.flush(30.0):
            pass
        if failed:
            raise RuntimeError(f"{len(failed)} score records not delivered: {failed[0]}")
        consumer.commit(asynchronous=False)
        count += len(msgs)
    return LoopResult(count, first_at)


def load_scorer(registry: str, version: str) -> tuple[ScoreFn, float, str]:
    """The worker's scoring on the CPU: NumPy fast path, single-threaded BLAS."""
    from threadpoolctl import threadpool_limits

    from detector import ModelRegistry

    artifact = ModelRegistry(registry).load(version)
    if artifact.detector.use_backend("auto") == "numpy":
        threadpool_limits(1, user_api="blas")  # as pipeline.worker.load_model does
    return artifact.detector.score, float(artifact.threshold.value), artifact.version


def _peak_rss_mb() -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def main(argv: list[str]) -> None:
    """Run the loop on ``COUNT`` windows and write what it did to ``OUT``."""
    from confluent_kafka import Consumer, Producer

    bootstrap, windows, scores, group, registry, version, count, out = argv[:8]
    score, threshold, model_version = load_scorer(registry, version)
    consumer = Consumer(consumer_config(bootstrap, group))
    producer = Producer(producer_config(bootstrap))
    consumer.subscribe([windows])
    try:
        r = run_loop(consumer, producer, scores, score, threshold, model_version, int(count))
    finally:
        consumer.close()
    Path(out).write_text(
        json.dumps({"windows": r.windows, "first_at": r.first_at, "peak_rss_mb": _peak_rss_mb()})
    )


if __name__ == "__main__":
    main(sys.argv[1:])
