"""The hand-written confluent-kafka loop with a fake consumer and producer: the score record is
the worker's for the same window, and offsets are committed only after ``flush``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from benchmarks.handwritten_loop import BATCH, run_loop, score_records
from pipeline.codec import encode_window_json

NOW = 1_700_000_123.25


@dataclass
class Msg:
    """The part of ``confluent_kafka.Message`` the loop reads."""

    _value: bytes
    _key: bytes | None
    _error: Any = None

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def error(self) -> Any:
        return self._error


@dataclass
class FakeConsumer:
    batches: list[list[Msg]]
    log: list[Any]
    asked: list[tuple[int, float]] = field(default_factory=list)

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        self.asked.append((num_messages, timeout))
        return self.batches.pop(0) if self.batches else []

    def commit(self, asynchronous: bool = True) -> None:
        assert asynchronous is False  # at-least-once: the commit is awaited
        self.log.append("commit")


@dataclass
class FakeProducer:
    """Queues records; ``full`` produce calls raise BufferError first; ``fail`` reports errors."""

    log: list[Any]
    full: int = 0
    fail: bool = False
    queued: list[Any] = field(default_factory=list)

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.queued.append((on_delivery, topic, key, value))
        self.log.append(("produce", topic, key, value))

    def poll(self, timeout: float) -> int:
        self.log.append("poll")
        return 0

    def flush(self, timeout: float) -> int:
        for on_delivery, *_ in self.queued:
            on_delivery("broker said no" if self.fail else None, None)
        self.queued.clear()
        self.log.append("flush")
        return 0


def _windows(n: int, start: int = 0) -> list[Msg]:
    rng = np.random.default_rng(start)
    return [
        Msg(
            encode_window_json(
                f"dev-{i % 7:04d}", i // 7, 1_700_000_000.5 + i, rng.normal(size=140)
            ),
            f"dev-{i % 7:04d}".encode(),
        )
        for i in range(start, start + n)
    ]


def _mean_abs(x: np.ndarray) -> np.ndarray:
    return np.abs(x).mean(axis=1).astype(np.float32)


def test_offsets_are_committed_after_flush_batch_by_batch() -> None:
    log: list[Any] = []
    batches = [_windows(3), [], _windows(2, start=3)]
    consumer = FakeConsumer(batches, log)
    producer = FakeProducer(log, full=2)
    clock: Iterator[float] = iter([10.0, 11.0, 12.0])
    r = run_loop(consumer, producer, "out", _mean_abs, 0.5, "v1", 5, lambda: next(clock))
    assert (r.windows, r.first_at) == (5, 10.0)
    kinds = [e if isinstance(e, str) else e[0] for e in log]
    # Two BufferErrors on the first record: the loop serves delivery reports and retries.
    first = ["poll", "poll", "produce", "produce", "produce", "flush", "commit"]
    assert kinds == [*first, "produce", "produce", "flush", "commit"]
    assert consumer.asked[0] == (BATCH, 1.0)
    produced = [e for e in log if isinstance(e, tuple)]
    assert [(t, k) for _, t, k, _ in produced] == [
        ("out", f"dev-{i % 7:04d}".encode()) for i in range(5)
    ]
    assert [orjson.loads(v)["seq"] for *_, v in produced] == [0, 0, 0, 0, 0]


def test_a_failed_delivery_is_never_committed() -> None:
    log: list[Any] = []
    consumer = FakeConsumer([_windows(2)], log)
    with pytest.raises(RuntimeError, match="2 score records not delivered: broker said no"):
        run_loop(consumer, FakeProducer(log, fail=True), "out", _mean_abs, 0.5, "v1", 2)
    assert "commit" not in log


def test_a_consume_error_stops_before_producing() -> None:
    log: list[Any] = []
    msgs = [*_windows(1), Msg(b"", None, _error="Broker: Unknown topic")]
    with pytest.raises(RuntimeError, match="Unknown topic"):
        run_loop(FakeConsumer([msgs], log), FakeProducer(log), "out", _mean_abs, 0.5, "v1", 2)
    assert log == []


def test_its_score_record_is_the_workers_for_the_same_window(small_artifact: Path) -> None:
    from detector import Artifact
    from pipeline.metrics import create_metrics
    from pipeline.policy import AlertPolicy
    from pipeline.processor import InRecord, WindowProcessor
    from pipeline.settings import TopicNames

    artifact = Artifact.load(small_artifact)
    artifact.detector.use_backend("auto")  # what the worker scores with on the CPU
    msgs = _windows(40)
    threshold = float(artifact.threshold.value)
    ours = score_records(msgs, artifact.detector.score, threshold, artifact.version, lambda: NOW)
    proc = WindowProcessor(
        artifact,
        create_metrics(),
        TopicNames("w", "s", "a", "d"),
        AlertPolicy(cooldown_s=30),
        64 * 1024,
        clock=lambda: NOW,
    )
    result = proc.compute([InRecord("w", 0, i, m.key(), m.value()) for i, m in enumerate(msgs)])
    assert not result.dlq
    assert ours == [(r.key, r.value) for r in result.scores]  # byte for byte
    assert {orjson.loads(v)["anomaly"] for _, v in ours} == {True, False}  # both branches
