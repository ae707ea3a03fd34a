"""``ecgwatch worker --processes 2`` on the real broker: two scoring processes in one group
split the partitions, every window is scored once or more, each process serves its own
metrics port, and SIGTERM to the supervisor stops both cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.replay import device_of, replay
from tests.integration.stream import (
    WorkerPool,
    every_window_scored,
    http_status,
    new_topics,
    parse_metrics,
    wait_until,
)

pytestmark = pytest.mark.integration

DEVICES = 16


def _scored_on(port: int) -> float:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            m = parse_metrics(r.read().decode())
    except OSError:
        return 0.0
    return m.get(("ecg_windows_total", (("outcome", "scored"),)), 0.0)


def _ready_on(port: int) -> bool:
    return http_status(f"http://127.0.0.1:{port}/readyz") == 200


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_two_processes_share_the_partitions_and_stop_together(
    engine: str, worker_pool: WorkerPool, kafka_bootstrap: str, shared_data: Path
) -> None:
    from ecgwatch.cli_common import load_windows

    topics = new_topics(kafka_bootstrap, f"it.procs.{engine}", partitions=8)
    sup = worker_pool.start(
        topics,
        extra_args=("--processes", "2"),
        env={"ECGWATCH_WORKER__ENGINE": engine},
    )
    first, second = sup.metrics_port, sup.metrics_port + 1
    wait_until(lambda: _ready_on(second), 90, "the second process ready", sup)
    x, _ = load_windows(str(shared_data))
    replay(x, bootstrap=kafka_bootstrap, topic=topics.windows, devices=DEVICES, progress=None)
    want = {device_of(i, DEVICES) for i in range(len(x))}
    every_window_scored(kafka_bootstrap, topics.scores, want, sup.log_tail)
    # Both processes took part: each scored some windows (8 partitions, 16 devices).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (_scored_on(first) and _scored_on(second)):
        time.sleep(0.5)
    a, b = _scored_on(first), _scored_on(second)
    assert a > 0 and b > 0, f"one process scored nothing: {a}, {b}\n{sup.log_tail()}"
    assert a + b >= len(x)
    assert sup.stop() == 0, f"SIGTERM should stop both cleanly\n{sup.log_tail()}"
    assert _scored_on(first) == 0 and _scored_on(second) == 0  # both ports released
