"""The batch engine keeps at-least-once delivery across a crash (SIGKILL mid-stream).

Every window of the input topic must end up with a score record, although the first worker
is killed without any chance to commit; the restarted worker re-processes from the last
committed offset (duplicates allowed, identified by ``(device_id, seq)``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import SeedModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 3000


def _scored(bootstrap: str, topic: str, timeout_s: float, want: int) -> set[tuple[str, int]]:
    from pipeline.tail import read_records

    seen = set()
    for r in read_records(bootstrap, topic, timeout_s=timeout_s, idle_timeout_s=timeout_s):
        seen.add((r["device_id"], r["seq"]))
        if len(seen) >= want:
            break
    return seen


def _worker(cfg: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ecgwatch", "worker", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_batch_engine_survives_sigkill(
    kafka_bootstrap: str, tmp_path: Path, seed_model: SeedModel
) -> None:
    from benchmarks.kafka_io import create_topics, fill
    from pipeline.binary import binary_message

    registry = seed_model.registry
    run = uuid.uuid4().hex[:8]
    windows, prefix = f"it.{run}.windows", f"it.{run}"
    outs = [f"{prefix}.{k}" for k in ("scores", "alerts", "dlq")]
    create_topics(kafka_bootstrap, {windows: 4, **{o: 4 for o in outs}}, set())
    x = np.random.default_rng(0).normal(size=(N, 140))
    fill(kafka_bootstrap, windows, x, binary_message, devices=20)
    cfg = tmp_path / "worker.yaml"
    cfg.write_text(
        f"kafka:\n  bootstrap: {kafka_bootstrap}\n  group_id: {prefix}\n  topics:\n"
        f"    windows: {windows}\n    scores: {outs[0]}\n    alerts: {outs[1]}\n"
        f"    dlq: {outs[2]}\n"
        f"worker:\n  registry: {registry}\n  metrics_port: 0\n  engine: batch\n"
        f"  batch_size: 50\n  data_dir: {tmp_path / 'state'}\n"
    )
    first = _worker(cfg)
    try:
        partial = _scored(kafka_bootstrap, outs[0], 120, 300)
        assert len(partial) >= 300, "the first worker scored nothing"
    finally:
        first.send_signal(signal.SIGKILL)  # no commit, no flush
        first.wait(30)
    second = _worker(cfg)
    try:
        scored = _scored(kafka_bootstrap, outs[0], 120, N)
    finally:
        second.terminate()
        out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out[-2000:]
    expected = {(f"dev-{i % 20:04d}", i // 20) for i in range(N)}
    assert expected - scored == set()

    # After a graceful stop everything is committed: a third run scores nothing new.
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=prefix, enable_auto_commit=False)
    try:
        tps = [TopicPartition(windows, p) for p in range(4)]
        committed = sum(c.committed(tp) or 0 for tp in tps)
        assert committed == N
    finally:
        c.close()
