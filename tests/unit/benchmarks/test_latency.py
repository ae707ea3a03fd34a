"""``measure_latency`` against a fake aiokafka that scores every window at once: the
warm-up, the timed stream's keys and sequence numbers, and the percentiles."""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any

import numpy as np
import orjson
import pytest

from benchmarks.worker_runs import measure_latency


def _fake_aiokafka(sent: list[tuple[str, str, bytes, str, int]]) -> types.ModuleType:
    scores: list[bytes] = []

    class Producer:
        def __init__(self, **kwargs: Any) -> None:
            pass

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

        async def partitions_for(self, topic: str) -> set[int]:
            return {1, 0}

        async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
            self._append("send_and_wait", topic, value, key)

        async def send(self, topic: str, value: bytes, key: bytes) -> None:
            self._append("send", topic, value, key)

        def _append(self, how: str, topic: str, value: bytes, key: bytes) -> None:
            doc = orjson.loads(value)
            sent.append((how, topic, key, doc["device_id"], doc["seq"]))
            scores.append(orjson.dumps({"ts": doc["ts"]}))

    class Consumer:
        def __init__(self, **kwargs: Any) -> None:
            self.assigned: list[Any] = []

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

        def assign(self, tps: list[Any]) -> None:
            self.assigned = tps

        async def seek_to_end(self, *tps: Any) -> None:
            assert list(tps) == self.assigned

        async def position(self, tp: Any) -> int:
            return 0

        async def getmany(self, timeout_ms: int) -> dict[Any, list[Any]]:
            await asyncio.sleep(0.001)
            got = [types.SimpleNamespace(value=v) for v in scores]
            scores.clear()
            return {"tp": got} if got else {}

    m = types.ModuleType("aiokafka")
    m.AIOKafkaProducer = Producer  # type: ignore[attr-defined]
    m.AIOKafkaConsumer = Consumer  # type: ignore[attr-defined]
    m.TopicPartition = lambda topic, p: (topic, p)  # type: ignore[attr-defined]
    return m


def test_warm_up_then_a_timed_stream_of_rate_times_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, str, bytes, str, int]] = []
    monkeypatch.setitem(sys.modules, "aiokafka", _fake_aiokafka(sent))
    data = np.zeros((3, 140))
    res = measure_latency("h:1", "win", "scores", data, rate=2000.0, seconds=0.05, devices=7)
    warm, timed = sent[:20], sent[20:]
    assert warm == [
        ("send_and_wait", "win", f"dev-{i % 7:04d}".encode(), f"dev-{i % 7:04d}", i)
        for i in range(20)
    ]
    assert timed == [
        ("send", "win", f"dev-{i % 7:04d}".encode(), f"dev-{i % 7:04d}", 10**9 + i // 7)
        for i in range(100)
    ]
    assert res["n"] == 100  # the warm-up's scores are not timed
    assert 0 <= res["p50"] <= res["p95"] <= res["p99"] <= res["max"]


def test_no_scores_back_gives_no_percentiles(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import worker_runs

    async def nothing(stream: Any) -> tuple[list[float], list[float]]:
        return [], []

    monkeypatch.setattr(worker_runs, "_latency", nothing)
    res = measure_latency("h:1", "win", "scores", np.zeros((1, 140)), 10.0, 1.0)
    assert res == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}


def test_a_settling_stream_runs_before_the_timed_one_and_is_reported_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, str, bytes, str, int]] = []
    monkeypatch.setitem(sys.modules, "aiokafka", _fake_aiokafka(sent))
    res = measure_latency(
        "h:1", "win", "scores", np.zeros((3, 140)), 2000.0, 0.05, devices=7, settle_s=0.02
    )
    streamed = sent[20:]  # after the warm-up: 40 settling windows, then 100 timed ones
    assert streamed == [
        ("send", "win", f"dev-{i % 7:04d}".encode(), f"dev-{i % 7:04d}", 10**9 + i // 7)
        for i in range(140)
    ]  # one stream: every device's seq keeps counting up across the two
    assert res["n"] == 100 and res["settling"]["n"] == 40
    assert res["settling"]["seconds"] == 0.02


def test_the_report_shows_the_settling_stream_under_the_timed_one() -> None:
    from benchmarks.report import _latency_lines

    lat = {"n": 9, "p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0, "rate": 2000.0}
    lat |= {"seconds": 30.0, "settling": {"n": 5, "p50": 7.0, "p99": 80.5, "max": 90.0}}
    lat["settling"]["seconds"] = 3.0
    lines = _latency_lines({"latency_ms": lat})
    assert lines[0].startswith("latency at 2,000/s for 30 s (9 windows): p50 1.0 ms")
    assert lines[1].startswith("  the 3 s streamed before it (worker just started): p50 7.0")
    assert lines[1].endswith("p99 80.5 ms, max 90.0 ms")
