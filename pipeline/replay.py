"""Replay beats into ``ecg.windows`` as N simulated devices (kafka-python producer)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.codec import encode_window_json
from pipeline.errors import PipelineConfigError, PipelineError
from pipeline.security import KafkaSecurity
from pipeline.settings import DEFAULT_TOPICS

__all__ = ["PROGRESS_INTERVAL_S", "ReplayStats", "device_of", "replay"]

#: Most often :func:`replay` reports progress (and once more when every window is sent).
PROGRESS_INTERVAL_S = 0.2


def device_of(i: int, devices: int) -> tuple[str, int]:
    """Device id and per-device sequence number of the ``i``-th window."""
    return f"dev-{i % devices:04d}", i // devices


@dataclass(frozen=True)
class ReplayStats:
    """What a replay sent."""

    sent: int
    seconds: float

    @property
    def rate(self) -> float:
        """Windows per second achieved."""
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


def _producer(bootstrap: str, security: KafkaSecurity | None, topic: str) -> Any:
    """A producer for ``topic``; refuses at once (rather than after the client's 60 s
    metadata wait) an unreachable broker or a topic that does not exist."""
    from kafka import KafkaProducer

    from pipeline.topics import require_topics

    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            acks="all",
            linger_ms=5,
            batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            compression_type=None,
            **(security or KafkaSecurity()).client_kwargs(),
        )
    except Exception as exc:
        raise PipelineError(
            f"cannot reach Kafka at {bootstrap}: {exc}; start a broker (`ecgwatch broker "
            "start`) or pass --bootstrap"
        ) from exc
    try:
        require_topics(bootstrap, [topic], security)
    except BaseException:
        producer.close(timeout=1)
        raise
    return producer


def replay(
    windows: np.ndarray,
    *,
    bootstrap: str,
    topic: str = DEFAULT_TOPICS.windows,
    devices: int = 10,
    rate: float | None = None,
    labels: np.ndarray | None = None,
    truth_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    encode: Callable[[str, int, float, np.ndarray], tuple[bytes, list[tuple[str, bytes]]]]
    | None = None,
    seq_offset: int = 0,
    security: KafkaSecurity | None = None,
) -> ReplayStats:
    """Send ``windows`` (raw units) to Kafka, keyed by device id, and wait for all acks.

    Parameters
    ----------
    windows : ndarray, shape (n, 140)
    bootstrap : str
        Kafka bootstrap servers.
    topic : str
        Destination topic.
    devices : int
        Number of simulated devices (window ``i`` goes to device ``i % devices``).
    rate : float, optional
        Windows per second; ``None`` sends flat out.
    labels : ndarray, optional
        1 = normal, 0 = abnormal; written with ``truth_path``.
    truth_path : path, optional
        CSV ``device_id,seq,label`` for every window sent.
    progress : callable, optional
        ``progress(sent, total)``, called at most every :data:`PROGRESS_INTERVAL_S` and once
        after the last window is handed to the producer; how it is shown is the caller's
        business (``ecgwatch replay`` draws a bar on a terminal, plain lines elsewhere).
    encode : callable, optional
        ``(device_id, seq, ts, samples) -> (value, headers)``; JSON by default.
    seq_offset : int
        Added to every sequence number (to replay the same data again as new windows).
    security : KafkaSecurity, optional
        TLS / SASL settings (default: plaintext).
    """
    _check_load(devices, rate)
    producer = _producer(bootstrap, security, topic)
    truth, writer = _open_truth(truth_path)
    message = _json_message if encode is None else encode
    n = len(windows)
    t0 = time.perf_counter()
    report = _reporter(progress, n)
    futures = []
    try:
        for i in range(n):
            if rate is not None:
                _sleep_until(t0 + i / rate)
            device_id, seq = device_of(i, devices)
            seq += seq_offset
            value, headers = message(device_id, seq, time.time(), windows[i])
            futures.append(
                producer.send(topic, key=device_id.encode(), value=value, headers=headers or None)
            )
            if writer is not None:
                writer.writerow([device_id, seq, "" if labels is None else int(labels[i])])
            if report is not None:
                report(i)
        _await_acks(producer, futures)
    finally:
        producer.close()
        if truth is not None:
            truth.close()
    return ReplayStats(n, time.perf_counter() - t0)


def _check_load(devices: int, rate: float | None) -> None:
    if devices < 1:
        raise PipelineConfigError(f"--devices: {devices} must be >= 1")
    if rate is not None and rate <= 0:
        raise PipelineConfigError(f"--rate: {rate} must be > 0 windows/s")


def _open_truth(path: str | Path | None) -> tuple[Any, Any]:
    """The ground-truth CSV file and its writer, header written (``(None, None)`` without one)."""
    if path is None:
        return None, None
    truth = open(path, "w", newline="")  # noqa: SIM115 (the caller closes it in its finally)
    writer = csv.writer(truth)
    writer.writerow(["device_id", "seq", "label"])
    return truth, writer


def _json_message(
    device_id: str, seq: int, ts: float, samples: np.ndarray
) -> tuple[bytes, list[tuple[str, bytes]]]:
    # No header: JSON is what a message without content-type is read as.
    return encode_window_json(device_id, seq, ts, samples), []


def _await_acks(producer: Any, futures: list[Any]) -> None:
    """Flush ``producer`` and wait for every send's acknowledgement (raises if one failed)."""
    producer.flush()
    for f in futures:
        f.get(timeout=60)


def _sleep_until(due: float) -> None:
    """Pace a rate-limited replay: wait until ``due`` (a ``perf_counter`` time)."""
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _reporter(progress: Callable[[int, int], None] | None, n: int) -> Callable[[int], None] | None:
    """``report(i)`` after the ``i``-th window is handed over: calls ``progress`` at most
    every :data:`PROGRESS_INTERVAL_S`, and for the last window (None without ``progress``)."""
    if progress is None:
        return None
    last_report = 0.0

    def report(i: int) -> None:
        nonlocal last_report
        now = time.perf_counter()
        if now - last_report >= PROGRESS_INTERVAL_S or i == n - 1:
            last_report = now
            progress(i + 1, n)

    return report
