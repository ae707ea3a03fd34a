"""Helpers for tests of the streaming worker against a real broker.

* :func:`new_topics` creates a private set of the four pipeline topics, so tests sharing the
  session broker never see each other's records.
* :class:`WorkerProcess` runs ``python -m ecgwatch worker`` from this checkout as a subprocess
  (own group id, data dir and metrics port), waits for ``/readyz`` and stops it.
* :class:`TopicReader` reads an output topic incrementally (no consumer group).
* :func:`parse_metrics` turns a ``/metrics`` page into ``{(name, labels): value}``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from ecgwatch.broker import free_ports
from ecgwatch.cli_common import worker_argv
from pipeline.settings import TopicNames
from pipeline.topics import create_topics, default_topics, ingest_topics

__all__ = [
    "REPO",
    "IngestProcess",
    "TopicReader",
    "WorkerPool",
    "WorkerProcess",
    "by_window",
    "ecgwatch_env",
    "new_topics",
    "parse_metrics",
    "topics_env",
    "wait_until",
]

REPO = Path(__file__).resolve().parents[2]

#: How long a worker may take to become ready (TensorFlow import + group join on a busy box).
READY_TIMEOUT_S = 120.0


def new_topics(
    bootstrap: str, prefix: str, partitions: int = 4, *, samples: bool = False
) -> TopicNames:
    """Create four fresh topics ``<prefix>.<random>.{windows,scores,alerts,dlq}`` (and, with
    ``samples``, the beat-extraction stage's ``.samples``, ``.samples.dlq`` and
    ``.ingest.state``)."""
    base = f"{prefix}.{uuid.uuid4().hex[:8]}"
    names = TopicNames(
        f"{base}.windows",
        f"{base}.scores",
        f"{base}.alerts",
        f"{base}.dlq",
        f"{base}.samples",
        f"{base}.samples.dlq",
        f"{base}.ingest.state",
    )
    specs = default_topics(
        partitions, windows=names.windows, scores=names.scores, alerts=names.alerts, dlq=names.dlq
    )
    if samples:
        specs += ingest_topics(
            partitions,
            samples=names.samples,
            samples_dlq=names.samples_dlq,
            ingest_state=names.ingest_state,
        )
    create_topics(bootstrap, specs)
    return names


def topics_env(topics: TopicNames) -> dict[str, str]:
    """``ECGWATCH_KAFKA__TOPICS__*`` variables selecting ``topics``."""
    return {
        f"ECGWATCH_KAFKA__TOPICS__{k.upper()}": getattr(topics, k)
        for k in ("windows", "scores", "alerts", "dlq", "samples", "samples_dlq", "ingest_state")
    }


def ecgwatch_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an ``ecgwatch`` subprocess: this checkout's code, no stray overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECGWATCH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU probing: faster start, same CPU scores
    if os.environ.get("ECGWATCH_TEST_ENGINE"):  # run the stream tests against another engine
        env["ECGWATCH_WORKER__ENGINE"] = os.environ["ECGWATCH_TEST_ENGINE"]
    env.update(extra or {})
    return env


#: The fields of a score record, in the order the worker writes them (docs/messages.md).
SCORE_FIELDS = (
    "device_id",
    "seq",
    "ts",
    "score",
    "threshold",
    "anomaly",
    "model_version",
    "scored_at",
)


def http_status(url: str) -> int | None:
    """HTTP status of ``url`` (None when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


@dataclass
class WorkerProcess:
    """One ``ecgwatch worker`` subprocess."""

    registry: Path
    bootstrap: str
    topics: TopicNames
    workdir: Path
    group_id: str = field(default_factory=lambda: f"it-{uuid.uuid4().hex[:10]}")
    batch_timeout_s: float = 0.05
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    starts: int = 0

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> WorkerProcess:
        """Launch the worker (same group id and data dir on every start) with a fresh port."""
        assert self.proc is None or self.proc.poll() is not None, "worker already running"
        self.starts += 1
        self.metrics_port = free_ports(1)[0]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}-{self.starts}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                cwd=REPO,
                env=ecgwatch_env({**topics_env(self.topics), **self.env}),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    name = "worker"

    def argv(self) -> list[str]:
        """The command line of one start."""
        return worker_argv(
            self.registry,
            self.bootstrap,
            self.metrics_port,
            self.workdir / "faust",
            "--group-id",
            self.group_id,
            *self.extra_args,
            batch_timeout_s=self.batch_timeout_s,
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> WorkerProcess:
        """Block until ``/readyz`` answers 200; fail with the log if the worker dies or hangs."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_running()
            if self.probe("/readyz") == 200:
                return self
            time.sleep(0.25)
        raise AssertionError(f"worker not ready after {timeout_s:.0f} s\n{self.log_tail()}")

    def kill9(self) -> None:
        """``kill -9``: no shutdown code runs, nothing more is committed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode

    # ---------------------------------------------------------------- observation
    def assert_running(self) -> None:
        """Fail (with the log) if the process has exited."""
        assert self.proc is not None, "worker was never started"
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError(f"worker exited with {rc}\n{self.log_tail()}")

    def probe(self, path: str) -> int | None:
        """HTTP status of ``path`` on the metrics port (None if nothing answers)."""
        return http_status(self.url(path))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The parsed ``/metrics`` page."""
        with urllib.request.urlopen(self.url("/metrics"), timeout=5) as resp:
            return parse_metrics(resp.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """One sample of ``/metrics``; 0 when absent or while nothing answers on the port."""
        try:
            return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)
        except OSError:
            return 0.0

    def scored(self) -> float:
        """``ecg_windows_total{outcome="scored"}`` (0 while the worker is not serving)."""
        return self.metric("ecg_windows_total", outcome="scored")

    def log_tail(self, chars: int = 6000) -> str:
        """End of the current log (for failure messages)."""
        if self.log_path is None or not self.log_path.exists():
            return "(no worker log)"
        text = self.log_path.read_text(errors="replace")
        return f"--- {self.log_path} (tail) ---\n{text[-chars:]}"


class IngestProcess(WorkerProcess):
    """One ``ecgwatch ingest`` subprocess (the beat-extraction stage), same lifecycle."""

    name = "ingest"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ecgwatch",
            "ingest",
            "--registry",
            str(self.registry),
            "--bootstrap",
            self.bootstrap,
            "--metrics-port",
            str(self.metrics_port),
            "--group-id",
            self.group_id,
            *self.extra_args,
        ]


def wait_until(
    cond: Callable[[], bool], timeout_s: float, what: str, *workers: WorkerProcess
) -> None:
    """Poll ``cond`` until true; fail with the workers' logs if one exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        for w in workers:
            w.assert_running()
        if time.monotonic() >= deadline:
            logs = "\n".join(w.log_tail() for w in workers)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.05)


class WorkerPool:
    """Starts workers and guarantees they are stopped (fixture teardown calls :meth:`close`)."""

    def __init__(self, registry: Path, bootstrap: str, root: Path) -> None:
        self.registry, self.bootstrap, self.root = registry, bootstrap, root
        self.workers: list[WorkerProcess] = []

    def start(self, topics: TopicNames, *, ready: bool = True, **kw: Any) -> WorkerProcess:
        """Start a worker with a fresh group id and data dir on ``topics``."""
        w = WorkerProcess(
            self.registry,
            self.bootstrap,
            topics,
            self.root / f"worker-{len(self.workers)}",
            **kw,
        )
        self.workers.append(w)
        w.start()
        return w.wait_ready() if ready else w

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):
                w.stop()


class TopicReader:
    """Reads every partition of one topic from the beginning; records accumulate in
    :attr:`records` as ``(key, value_json, partition, offset)``."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.topic = topic
        self.records: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        parts = self._consumer.partitions_for_topic(topic)
        assert parts, f"topic {topic} does not exist"
        self._tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self._consumer.assign(self._tps)
        self._consumer.seek_to_beginning(*self._tps)

    def poll(self, timeout_ms: int = 200) -> int:
        """Read what is available now; returns how many records were added."""
        n = 0
        for msgs in self._consumer.poll(timeout_ms=timeout_ms, max_records=10_000).values():
            for m in msgs:
                rec = orjson.loads(m.value)
                rec["_partition"], rec["_offset"] = m.partition, m.offset
                self.records.append(rec)
                self.keys.append(m.key)
                n += 1
        return n

    def until(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout_s: float,
        why: str = "",
        context: Callable[[], str] | None = None,
    ) -> list[dict[str, Any]]:
        """Poll until ``done(records)``; fail after ``timeout_s`` saying ``why`` (and
        ``context()``, e.g. a worker's log)."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.topic}: {why or 'condition'} not met after {timeout_s:.0f} s "
                    f"({len(self.records)} records read)\n{context() if context else ''}"
                )
            self.poll()
        return self.records

    def drain(self) -> list[dict[str, Any]]:
        """Read up to the current end of every partition."""
        end = self._consumer.end_offsets(self._tps)
        while any(self._consumer.position(tp) < end[tp] for tp in self._tps):
            self.poll()
        return self.records

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted label pairs): value}`` of a Prometheus text page."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def by_window(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Score records by ``(device_id, seq)`` (the first of duplicates)."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in records:
        out.setdefault((r["device_id"], r["seq"]), r)
    return out


def every_window_scored(
    bootstrap: str, topic: str, want: set[tuple[str, int]], log_tail: Callable[[], str]
) -> list[dict[str, Any]]:
    """Read ``topic`` until every (device, seq) of ``want`` has a score; all records read.

    Asserts that no other window was scored and that a re-delivered window, scored again,
    got the same score (so duplicates are harmless to a subscriber).
    """
    with TopicReader(bootstrap, topic) as reader:
        records = reader.until(
            lambda rs: want <= set(by_window(rs)), 120, "every window scored", log_tail
        )
    got = by_window(records)
    assert set(got) == want
    for r in records:
        # Equal up to float32 rounding: a re-delivered window is scored in another batch, and
        # BLAS may round the last bit differently by batch size (test_contract.py).
        first = got[(r["device_id"], r["seq"])]["score"]
        assert r["score"] == pytest.approx(first, rel=1e-6)
    return records
