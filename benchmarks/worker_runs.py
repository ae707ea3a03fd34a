"""Run the real worker (``ecgwatch worker``) as a subprocess and time or probe it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.kafka_io import device_of

__all__ = ["Worker", "measure_latency"]


class Worker:
    """One ``ecgwatch worker`` process on its own topics and consumer group.

    Parameters
    ----------
    workdir : Path
        Where its config file and Faust state go.
    bootstrap, registry : str
    windows, prefix : str
        Input topic; output topics are ``PREFIX.scores`` / ``.alerts`` / ``.dlq``.
    engine : str
        ``batch`` or ``faust``.
    processes : int
        ``worker.processes`` (its peak RSS is then the supervisor's, not the scorers').
    """

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        registry: str,
        windows: str,
        prefix: str,
        engine: str = "batch",
        processes: int = 1,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = workdir / f"{prefix}.yaml"
        self._started = workdir / f"{prefix}.started"
        self._started.unlink(missing_ok=True)
        cfg.write_text(
            "kafka:\n"
            f"  bootstrap: {bootstrap}\n"
            f"  group_id: {prefix}\n"
            "  topics:\n"
            f"    windows: {windows}\n    scores: {prefix}.scores\n"
            f"    alerts: {prefix}.alerts\n    dlq: {prefix}.dlq\n"
            "worker:\n"
            f"  registry: {registry}\n  metrics_port: 0\n  engine: {engine}\n"
            f"  data_dir: {workdir / prefix}\n  log_level: warning\n"
            f"  started_file: {self._started}\n  processes: {processes}\n"
        )
        self.scores = f"{prefix}.scores"
        self.peak_rss_mb = 0.0
        self.lines: list[str] = []
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ecgwatch", "worker", "--config", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    @property
    def first_at(self) -> float | None:
        """Epoch time of the worker's first consumed batch (``worker.started_file``), or None."""
        try:
            return float(self._started.read_text())
        except (OSError, ValueError):
            return None

    def rss_mb(self) -> float:
        """Peak resident memory so far (VmHWM), MiB."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
        except OSError:
            pass
        return self.peak_rss_mb

    def stop(self) -> None:
        """Read peak RSS, then SIGTERM (graceful: commits) and wait."""
        self.rss_mb()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, n: int = 15) -> str:
        """The last output lines (for error messages)."""
        return "\n".join(self.lines[-n:])


@dataclass(frozen=True)
class _Stream:
    """One latency measurement: where windows go, where scores come back, and how fast."""

    bootstrap: str
    windows_topic: str
    scores_topic: str
    data: np.ndarray
    rate: float
    seconds: float
    devices: int
    settle_s: float = 0.0

    def window(self, i: int, seq: int) -> tuple[bytes, bytes]:
        """Key and JSON value of the ``i``-th window, stamped now (latency counts from here)."""
        from pipeline.codec import encode_window_json

        device_id, _ = device_of(i, self.devices)
        value = encode_window_json(device_id, seq, time.time(), self.data[i % len(self.data)])
        return device_id.encode(), value


async def _from_the_end(consumer: Any, producer: Any, topic: str) -> None:
    """Assign every partition of ``topic`` and resolve its end: only new scores are timed."""
    from aiokafka import TopicPartition

    parts = sorted(await producer.partitions_for(topic))
    tps = [TopicPartition(topic, p) for p in parts]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)


async def _warm_up(producer: Any, consumer: Any, s: _Stream, n: int = 20) -> None:
    """Send ``n`` windows one by one and wait (up to 120 s) for as many scores.

    Then the worker has joined its group and scored something, so its start-up is not timed.
    """
    for i in range(n):
        key, value = s.window(i, i)
        await producer.send_and_wait(s.windows_topic, value, key=key)
    seen, deadline = 0, time.monotonic() + 120
    while seen < n and time.monotonic() < deadline:
        for msgs in (await consumer.getmany(timeout_ms=200)).values():
            seen += len(msgs)


async def _collect(consumer: Any, n: int, lat: list[float], done: asyncio.Event) -> None:
    """Append ``now - ts`` of each score record until ``n`` are in, then set ``done``."""
    import orjson

    while len(lat) < n:
        got = await consumer.getmany(timeout_ms=100)
        now = time.time()
        for msgs in got.values():
            for m in msgs:
                lat.append(now - orjson.loads(m.value)["ts"])
    done.set()


async def _produce_steadily(producer: Any, s: _Stream, n: int, first: int = 0) -> None:
    """Send windows ``first .. first + n - 1`` at ``s.rate``: every 5 ms what is due by then
    (a steady stream); each device's ``seq`` keeps counting up across calls."""
    tick = 0.005
    t0 = time.perf_counter()
    sent = 0
    while sent < n:
        due = int(min(n, (time.perf_counter() - t0) * s.rate + 1))
        while sent < due:
            i = first + sent
            key, value = s.window(i, 10**9 + i // s.devices)
            await producer.send(s.windows_topic, value, key=key)
            sent += 1
        await asyncio.sleep(tick)


async def _stream(producer: Any, consumer: Any, s: _Stream, n: int, first: int) -> list[float]:
    """Latencies of ``n`` windows streamed at ``s.rate`` (those back within 30 s)."""
    lat: list[float] = []
    done = asyncio.Event()
    reader = asyncio.ensure_future(_collect(consumer, n, lat, done))
    await _produce_steadily(producer, s, n, first)
    try:
        await asyncio.wait_for(done.wait(), 30)
    except TimeoutError:
        reader.cancel()
    return lat


async def _latency(s: _Stream) -> tuple[list[float], list[float]]:
    """Seconds from produce to score record: the settling stream's, then the timed one's."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=s.bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
    )
    await producer.start()
    await consumer.start()
    try:
        await _from_the_end(consumer, producer, s.scores_topic)
        await _warm_up(producer, consumer, s)
        settle_n = int(s.rate * s.settle_s)
        settle = await _stream(producer, consumer, s, settle_n, 0) if settle_n else []
        lat = await _stream(producer, consumer, s, int(s.rate * s.seconds), settle_n)
    finally:
        await consumer.stop()
        await producer.stop()
    return settle, lat


def _percentiles_ms(lat: list[float]) -> dict[str, Any]:
    """``n``, p50/p95/p99 and max of ``lat`` (seconds) in ms; None each when it is empty."""
    arr = np.asarray(lat) * 1000.0
    if not len(arr):
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    p = np.percentile(arr, [50, 95, 99])
    return {
        "n": len(arr),
        "p50": float(p[0]),
        "p95": float(p[1]),
        "p99": float(p[2]),
        "max": float(arr.max()),
    }


def measure_latency(
    bootstrap: str,
    windows_topic: str,
    scores_topic: str,
    data: np.ndarray,
    rate: float,
    seconds: float,
    devices: int = 100,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Produce at ``rate`` for ``seconds``; percentiles of score-available − produced (ms).

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers, comma-separated.
    windows_topic, scores_topic : str
        Where the windows go and where their score records are read back (the same topic
        measures the broker alone: produce -> consume).
    data : np.ndarray
        Windows to send, cycled, one per row.
    rate : float
        Windows per second.
    seconds : float
        How long the timed stream lasts (after a warm-up of 20 windows).
    devices : int
        Distinct device ids (message keys) the windows are spread over.
    settle_s : float
        Seconds streamed at ``rate`` after the warm-up and before the timed stream. The
        warm-up only waits until the worker has joined its group and scored 20 windows, so
        without this the timed stream starts with the worker's first second of work.

    Returns
    -------
    dict
        ``n`` (score records seen) and ``p50``, ``p95``, ``p99``, ``max`` in ms (None when
        no score came back); with ``settle_s`` also ``settling``: the same for the settling
        stream (the start-up transient, reported rather than hidden).
    """
    stream = _Stream(bootstrap, windows_topic, scores_topic, data, rate, seconds, devices, settle_s)
    settle, lat = asyncio.run(_latency(stream))
    out = _percentiles_ms(lat)
    if settle_s:
        out["settling"] = {**_percentiles_ms(settle), "seconds": settle_s}
    return out
