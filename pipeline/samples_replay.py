"""Stream continuous signals into ``ecg.samples`` as chunks: the continuous demo source.

``ecgwatch replay --continuous`` stitches ECG5000 beats into one signal per device
(:mod:`training.continuous`, which this package does not import) and hands them to
:func:`replay_signals`. The producer, its security settings and the progress reports are the
window replay's (:mod:`pipeline.replay`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from detector.beats import MAX_FS, MIN_FS
from pipeline.errors import PipelineConfigError
from pipeline.replay import ReplayStats, _await_acks, _producer, _reporter
from pipeline.samples import MAX_CHUNK_SAMPLES, samples_message
from pipeline.security import KafkaSecurity
from pipeline.settings import DEFAULT_TOPICS

__all__ = ["ChunkReplayStats", "PlannedChunk", "chunk_length", "plan_chunks", "replay_signals"]


@dataclass(frozen=True)
class ChunkReplayStats(ReplayStats):
    """What a continuous replay sent: ``sent`` chunks holding ``samples`` samples."""

    samples: int


@dataclass(frozen=True)
class PlannedChunk:
    """One chunk of one device's signal, and when it is due.

    Attributes
    ----------
    device_id : str
    seq : int
        The device's chunk counter, from 0.
    start, stop : int
        The chunk is ``signal[start:stop]``.
    due_s : float
        Seconds after the stream's start at which its last sample "happens" (``stop / fs``):
        when a real-time replay sends it.
    """

    device_id: str
    seq: int
    start: int
    stop: int
    due_s: float


def chunk_length(chunk_s: float, fs: float) -> int:
    """Samples per chunk: ``chunk_s`` seconds at ``fs`` Hz, rounded, at least 1.

    Raises
    ------
    PipelineConfigError
        ``chunk_s`` not > 0, ``fs`` outside ``MIN_FS..MAX_FS``, or a chunk over
        :data:`pipeline.samples.MAX_CHUNK_SAMPLES`.
    """
    if not (math.isfinite(fs) and MIN_FS <= fs <= MAX_FS):
        raise PipelineConfigError(f"--fs: {fs!r} Hz; use {MIN_FS:g}..{MAX_FS:g}")
    if not (math.isfinite(chunk_s) and chunk_s > 0):
        raise PipelineConfigError(f"--chunk-s: {chunk_s!r} must be > 0 seconds")
    n = max(1, round(chunk_s * fs))
    if n > MAX_CHUNK_SAMPLES:
        raise PipelineConfigError(
            f"--chunk-s: {chunk_s:g} s at {fs:g} Hz is {n} samples; a chunk holds at most "
            f"{MAX_CHUNK_SAMPLES}"
        )
    return n


def plan_chunks(
    lengths: Mapping[str, int], fs: float, chunk_n: int, *, stagger: bool = False
) -> list[PlannedChunk]:
    """Every chunk of every device, in the order a live stream would send them.

    Parameters
    ----------
    lengths : mapping of str to int
        Device id -> its signal's length in samples.
    fs : float
        Sampling rate, Hz.
    chunk_n : int
        Samples per chunk; a device's last chunk holds the rest (it may be shorter).
    stagger : bool
        Spread the devices' chunk boundaries evenly over one chunk (device ``i`` of ``n``
        sends a first chunk ``i * chunk_n // n`` samples short), as unsynchronised devices
        do; otherwise every device's chunks are due at the same instants.

    Returns
    -------
    list of PlannedChunk
        By due time, then in the order of ``lengths``: one device's chunks in ``seq`` order,
        consecutive (each starts where the previous stopped).
    """
    plan = []
    for i, (device, n) in enumerate(lengths.items()):
        short = (i * chunk_n) // len(lengths) if stagger else 0
        starts = [0, *range(chunk_n - short, n, chunk_n)] if short else range(0, n, chunk_n)
        stops = [*starts[1:], n]
        plan += [
            PlannedChunk(device, seq, a, b, b / fs)
            for seq, (a, b) in enumerate(zip(starts, stops, strict=True))
        ]
    order = {device: i for i, device in enumerate(lengths)}
    plan.sort(key=lambda c: (c.due_s, order[c.device_id], c.seq))
    return plan


def replay_signals(
    signals: Mapping[str, np.ndarray],
    fs: float,
    *,
    bootstrap: str,
    topic: str = DEFAULT_TOPICS.samples,
    security: KafkaSecurity | None = None,
    chunk_s: float = 0.25,
    realtime: bool = False,
    binary: bool = False,
    start_ts: float | None = None,
    stagger: bool = False,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> ChunkReplayStats:
    """Send continuous signals as ``ecg.samples`` chunks, keyed by device id; wait for the acks.

    Parameters
    ----------
    signals : mapping of str to ndarray
        Device id -> its signal (1-D, any linear unit), all sampled at ``fs``.
    fs : float
        Sampling rate, Hz (``MIN_FS..MAX_FS``).
    bootstrap : str
        Kafka bootstrap servers.
    topic : str
        Destination topic (default ``ecg.samples``).
    security : KafkaSecurity, optional
        TLS / SASL settings (default: plaintext).
    chunk_s : float
        Seconds of signal per chunk (:func:`chunk_length`).
    realtime : bool
        Pace the stream as devices would send it: each chunk when its last sample happens,
        ``due_s`` (:class:`PlannedChunk`) after the start; otherwise as fast as possible.
    binary : bool
        Send binary frames (``content-type: application/x-ecg-samples``) instead of JSON.
    start_ts : float, optional
        Epoch seconds of every signal's first sample (default: now); in real time, the
        stream starts then (waiting for it, or starting that far in when it is past).
        Sample ``i`` is at ``start_ts + i / fs``; a chunk's ``ts`` is that of its first sample.
    stagger : bool
        Spread the devices' chunk boundaries over one chunk (:func:`plan_chunks`).
    progress : callable, optional
        ``progress(sent, total)`` in chunks, as :func:`pipeline.replay.replay` reports.
    clock, sleep : callable
        Monotonic seconds and a wait (for tests).

    Returns
    -------
    ChunkReplayStats
    """
    chunk_n = chunk_length(chunk_s, fs)
    arrays = _checked_signals(signals)
    plan = plan_chunks({d: a.size for d, a in arrays.items()}, fs, chunk_n, stagger=stagger)
    producer = _producer(bootstrap, security, topic)
    report = _reporter(progress, len(plan))
    warm = getattr(producer, "partitions_for", None)
    if warm is not None:  # the first send would block on the topic's metadata
        warm(topic)
    ts0 = time.time() if start_ts is None else float(start_ts)
    # In real time, sample i "happens" at ts0 + i / fs on the wall clock: a ts0 still ahead is
    # waited for, one already past (the caller took it before setting up) starts that far in.
    t0 = clock() + (ts0 - time.time())
    futures = []
    try:
        for i, c in enumerate(plan):
            if realtime:
                delay = t0 + c.due_s - clock()
                if delay > 0:
                    sleep(delay)
            value, headers = samples_message(
                c.device_id,
                c.seq,
                ts0 + c.start / fs,
                fs,
                arrays[c.device_id][c.start : c.stop],
                binary=binary,
            )
            futures.append(
                producer.send(topic, key=c.device_id.encode(), value=value, headers=headers or None)
            )
            if report is not None:
                report(i)
        _await_acks(producer, futures)
    finally:
        producer.close()
    samples = sum(a.size for a in arrays.values())
    return ChunkReplayStats(len(plan), clock() - t0, samples)


def _checked_signals(signals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The signals as 1-D float64 arrays, or a :class:`PipelineConfigError` naming the device."""
    if not signals:
        raise PipelineConfigError("signals: no device to replay")
    out = {}
    for device, signal in signals.items():
        arr = np.asarray(signal, dtype=np.float64)
        if not 1 <= len(device) <= 256:
            raise PipelineConfigError(f"device id {device[:40]!r}: must be 1-256 characters")
        if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
            raise PipelineConfigError(
                f"signal of {device!r}: need a non-empty 1-D array of finite samples, got "
                f"shape {arr.shape}"
            )
        out[device] = arr
    return out
