"""Streaming continuous signals as ``ecg.samples`` chunks (no broker: a fake producer)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest

import pipeline.samples_replay as samples_replay
from pipeline.errors import PipelineConfigError
from pipeline.samples import MAX_CHUNK_SAMPLES, SAMPLES_CONTENT_TYPE, decode_chunk
from pipeline.samples_replay import chunk_length, plan_chunks, replay_signals
from pipeline.settings import DEFAULT_TOPICS


class _Future:
    def get(self, timeout: float) -> None:
        pass


class _Producer:
    """Records what is sent, and when on the fake clock."""

    def __init__(self, clock: _Clock | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.clock = clock
        self.closed = False

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> _Future:
        at = self.clock.now if self.clock is not None else None
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers, "at": at})
        return _Future()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class _Clock:
    """A monotonic clock that only moves when the replay sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        assert s > 0
        self.sleeps.append(s)
        self.now += s


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> _Producer:
    p = _Producer()
    monkeypatch.setattr(samples_replay, "_producer", lambda *_a: p)
    return p


def _chunks(producer: _Producer) -> list[Any]:
    return [decode_chunk(m["value"], m["headers"]) for m in producer.sent]


def test_chunk_length_and_its_limits() -> None:
    assert chunk_length(0.25, 250.0) == 62  # 62.5 rounds to even
    assert chunk_length(1.0, 360.0) == 360
    assert chunk_length(0.001, 250.0) == 1  # at least one sample
    for chunk_s, fs, flag in [
        (0.0, 250.0, "--chunk-s"),
        (float("nan"), 250.0, "--chunk-s"),
        (0.25, 10.0, "--fs"),
        (0.25, 20_000.0, "--fs"),
        (MAX_CHUNK_SAMPLES / 1000 + 1, 1000.0, "--chunk-s"),
    ]:
        with pytest.raises(PipelineConfigError, match=flag):
            chunk_length(chunk_s, fs)


def test_plan_covers_each_signal_once_in_order_with_a_partial_last_chunk() -> None:
    plan = plan_chunks({"a": 10, "b": 7}, 100.0, 4)
    for device, n in (("a", 10), ("b", 7)):
        mine = [c for c in plan if c.device_id == device]
        assert [c.seq for c in mine] == list(range(len(mine)))
        assert mine[0].start == 0 and mine[-1].stop == n
        assert all(p.stop == c.start for p, c in itertools.pairwise(mine))
        assert all(c.stop - c.start == 4 for c in mine[:-1]) and mine[-1].stop - mine[-1].start > 0
    assert [(c.device_id, c.seq, c.due_s) for c in plan] == [
        ("a", 0, 0.04),
        ("b", 0, 0.04),
        ("b", 1, 0.07),  # b's short last chunk is due before a's third
        ("a", 1, 0.08),
        ("a", 2, 0.1),
    ]


def test_chunks_are_keyed_consecutive_and_continuous(producer: _Producer) -> None:
    rng = np.random.default_rng(1)
    signals = {"dev-0000": rng.normal(size=1000), "dev-0001": rng.normal(size=640)}
    stats = replay_signals(
        signals, 250.0, bootstrap="unused:1", chunk_s=0.25, start_ts=1795736000.0
    )
    assert stats.sent == len(producer.sent) == 17 + 11 and stats.samples == 1640
    assert producer.closed
    chunks = _chunks(producer)
    for device, signal in signals.items():
        mine = [(m, c) for m, c in zip(producer.sent, chunks, strict=True) if c.device_id == device]
        assert all(m["key"] == device.encode() for m, _ in mine)
        assert all(m["topic"] == DEFAULT_TOPICS.samples for m, _ in mine)
        assert all(m["headers"] is None for m, _ in mine)  # JSON: no header
        assert [c.seq for _, c in mine] == list(range(len(mine)))
        assert {c.fs for _, c in mine} == {250.0}
        first = np.cumsum([0] + [c.samples.size for _, c in mine[:-1]])
        np.testing.assert_allclose([c.ts for _, c in mine], 1795736000.0 + first / 250.0)
        assert [c.samples.size for _, c in mine[:-1]] == [62] * (len(mine) - 1)
        assert mine[-1][1].samples.size == len(signal) - 62 * (len(mine) - 1)
        np.testing.assert_array_equal(np.concatenate([c.samples for _, c in mine]), signal)


def test_binary_chunks_and_topic(producer: _Producer) -> None:
    signal = np.linspace(-1, 1, 100)
    replay_signals({"d": signal}, 500.0, bootstrap="u:1", topic="t", binary=True, chunk_s=0.1)
    assert [m["headers"] for m in producer.sent] == [[("content-type", SAMPLES_CONTENT_TYPE)]] * 2
    assert {m["topic"] for m in producer.sent} == {"t"}
    got = np.concatenate([c.samples for c in _chunks(producer)])
    np.testing.assert_array_equal(got, signal.astype(np.float32))


def test_realtime_sends_each_chunk_when_its_last_sample_happens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    producer = _Producer(clock)
    monkeypatch.setattr(samples_replay, "_producer", lambda *_a: producer)
    signals = {"a": np.zeros(250), "b": np.zeros(130)}
    stats = replay_signals(
        signals,
        100.0,
        bootstrap="u:1",
        chunk_s=0.5,
        realtime=True,
        clock=clock,
        sleep=clock.sleep,
    )
    sent_at = [m["at"] - 1000.0 for m in producer.sent]
    chunks = _chunks(producer)
    ts0 = min(c.ts for c in chunks)  # now, on the wall clock
    due = [c.ts - ts0 + c.samples.size / c.fs for c in chunks]  # the last sample's (+ 1/fs)
    np.testing.assert_allclose(sent_at, due, atol=1e-3)  # (the wall clock moved a little)
    assert sent_at == sorted(sent_at)
    order = [(c.device_id, c.seq) for c in chunks]
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("b", 2), ("a", 2), ("a", 3), ("a", 4)]
    np.testing.assert_allclose(sent_at, [0.5, 0.5, 1.0, 1.0, 1.3, 1.5, 2.0, 2.5], atol=1e-3)
    assert stats.seconds == pytest.approx(2.5)  # the longest signal's duration
    assert len(clock.sleeps) == 6  # chunks due together go out together


def test_realtime_from_a_start_time_already_past_catches_up_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    producer = _Producer(clock)
    monkeypatch.setattr(samples_replay, "_producer", lambda *_a: producer)
    replay_signals(
        {"a": np.zeros(250)},
        100.0,
        bootstrap="u:1",
        chunk_s=0.5,
        realtime=True,
        start_ts=time.time() - 0.7,  # the first chunk's last sample happened 0.2 s ago
        clock=clock,
        sleep=clock.sleep,
    )
    sent_at = [m["at"] - 1000.0 for m in producer.sent]
    np.testing.assert_allclose(sent_at, [0.0, 0.3, 0.8, 1.3, 1.8], atol=0.05)


def test_fast_replay_never_sleeps(producer: _Producer) -> None:
    clock = _Clock()
    replay_signals({"a": np.zeros(1000)}, 250.0, bootstrap="u:1", clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [] and len(producer.sent) == 17


def test_progress_is_reported_in_chunks(producer: _Producer) -> None:
    calls: list[tuple[int, int]] = []
    replay_signals(
        {"a": np.zeros(500)}, 250.0, bootstrap="u:1", progress=lambda d, t: calls.append((d, t))
    )
    assert calls[0] == (1, 9) and calls[-1] == (9, 9)


@pytest.mark.parametrize(
    ("signals", "words"),
    [
        ({}, "no device"),
        ({"": np.zeros(3)}, "1-256"),
        ({"d": np.zeros(0)}, "non-empty"),
        ({"d": np.zeros((2, 3))}, "1-D"),
        ({"d": np.array([0.0, np.nan])}, "finite"),
    ],
)
def test_bad_signals_are_refused_before_connecting(signals: Any, words: str) -> None:
    with pytest.raises(PipelineConfigError, match=words):
        replay_signals(signals, 250.0, bootstrap="unused:1")


def test_staggered_devices_send_at_spread_instants_and_still_cover_their_signal() -> None:
    plan = plan_chunks({f"d{i}": 1000 for i in range(4)}, 100.0, 40, stagger=True)
    for i in range(4):
        mine = [c for c in plan if c.device_id == f"d{i}"]
        assert mine[0].start == 0 and mine[-1].stop == 1000
        assert all(p.stop == c.start for p, c in itertools.pairwise(mine))
        assert mine[0].stop == 40 - i * 10  # device i's first chunk is i/4 of a chunk short
        assert all(c.stop - c.start == 40 for c in mine[1:-1])
    firsts = sorted(c.due_s for c in plan if c.seq == 1)
    assert firsts == pytest.approx([0.5, 0.6, 0.7, 0.8])  # a quarter chunk apart
    unstaggered = plan_chunks({f"d{i}": 1000 for i in range(4)}, 100.0, 40)
    assert {c.due_s for c in unstaggered if c.seq == 1} == {0.8}


def test_realtime_from_a_start_time_ahead_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    producer = _Producer(clock)
    monkeypatch.setattr(samples_replay, "_producer", lambda *_a: producer)
    replay_signals(
        {"a": np.zeros(100)},
        100.0,
        bootstrap="u:1",
        chunk_s=0.5,
        realtime=True,
        start_ts=time.time() + 0.5,
        clock=clock,
        sleep=clock.sleep,
    )
    sent_at = [m["at"] - 1000.0 for m in producer.sent]
    np.testing.assert_allclose(sent_at, [1.0, 1.5], atol=0.05)
