"""Run the real worker (``ecgwatch worker``) as a subprocess and time or probe it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

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
    """

    def __init__(
        self,
        workdir: Path,
        bootstrap: str,
        registry: str,
        windows: str,
        prefix: str,
        engine: str = "batch",
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
            f"  started_file: {self._started}\n"
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


async def _latency(
    bootstrap: str,
    windows_topic: str,
    scores_topic: str,
    data: np.ndarray,
    rate: float,
    seconds: float,
    devices: int,
) -> list[float]:
    import orjson
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    from pipeline.codec import encode_window_json

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
    )
    await producer.start()
    await consumer.start()
    lat: list[float] = []
    try:
        parts = sorted(await producer.partitions_for(scores_topic))
        tps = [TopicPartition(scores_topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        n = int(rate * seconds)
        done = asyncio.Event()

        async def read() -> None:
            while len(lat) < n:
                got = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for msgs in got.values():
                    for m in msgs:
                        lat.append(now - orjson.loads(m.value)["ts"])
            done.set()

        # Warm-up: the worker has joined its group and scored something before timing.
        for i in range(20):
            dev = f"dev-{i % devices:04d}"
            value = encode_window_json(dev, i, time.time(), data[i % len(data)])
            await producer.send_and_wait(windows_topic, value, key=dev.encode())
        deadline = time.monotonic() + 120
        while len(lat) < 20 and time.monotonic() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                lat.extend(0.0 for _ in msgs)
        lat.clear()
        reader = asyncio.ensure_future(read())
        t0 = time.perf_counter()
        tick = 0.005  # send every 5 ms what the rate asks for (a steady stream)
        sent = 0
        while sent < n:
            due = int(min(n, (time.perf_counter() - t0) * rate + 1))
            while sent < due:
                dev = f"dev-{sent % devices:04d}"
                value = encode_window_json(
                    dev, 10**9 + sent // devices, time.time(), data[sent % len(data)]
                )
                await producer.send(windows_topic, value, key=dev.encode())
                sent += 1
            await asyncio.sleep(tick)
        try:
            await asyncio.wait_for(done.wait(), 30)
        except TimeoutError:
            reader.cancel()
    finally:
        await consumer.stop()
        await producer.stop()
    return lat


def measure_latency(
    bootstrap: str,
    windows_topic: str,
    scores_topic: str,
    data: np.ndarray,
    rate: float,
    seconds: float,
    devices: int = 100,
) -> dict[str, Any]:
    """Produce at ``rate`` for ``seconds``; percentiles of score-available − produced (ms)."""
    lat = asyncio.run(
        _latency(bootstrap, windows_topic, scores_topic, data, rate, seconds, devices)
    )
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
