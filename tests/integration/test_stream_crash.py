"""At-least-once across a crash: ``kill -9`` the worker mid-replay, restart it, lose nothing."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from pipeline.replay import device_of, replay
from tests.integration.stream import WorkerPool, every_window_scored, new_topics, wait_until

pytestmark = pytest.mark.integration

DEVICES = 25
RATE = 2000.0  # windows/s: the 5000-beat replay lasts ~2.5 s, so the kill lands inside it
#: Faust reads these from the environment. With its 60 s default session timeout the restarted
#: worker would wait up to a minute for the group to drop the killed member.
FAST_FAILOVER = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}


def test_kill9_mid_replay_then_restart_loses_no_window(
    kafka_bootstrap: str, shared_data: Path, worker_pool: WorkerPool
) -> None:
    from ecgwatch.cli_common import load_windows

    x, _ = load_windows(str(shared_data), split="all")
    assert len(x) >= 5000
    topics = new_topics(kafka_bootstrap, "it.crash")
    worker = worker_pool.start(topics, env=FAST_FAILOVER)
    errors: list[BaseException] = []

    def send() -> None:
        try:
            replay(
                x,
                bootstrap=kafka_bootstrap,
                topic=topics.windows,
                devices=DEVICES,
                rate=RATE,
                progress=None,
            )
        except BaseException as exc:  # reported by the test thread below
            errors.append(exc)

    sender = threading.Thread(target=send, name="replay")
    sender.start()
    try:
        wait_until(lambda: worker.scored() >= 500, 60, "500 windows scored", worker)
        worker.kill9()
        killed_mid_replay = sender.is_alive()
    finally:
        sender.join(timeout=120)
    assert not errors, errors
    assert killed_mid_replay, "the replay ended before the kill: raise the window count"
    assert worker.proc is not None and worker.proc.returncode == -9

    worker.start().wait_ready()  # same group id and data dir: resumes from committed offsets
    want = {device_of(i, DEVICES) for i in range(len(x))}
    records = every_window_scored(kafka_bootstrap, topics.scores, want, worker.log_tail)
    copies = Counter((r["device_id"], r["seq"]) for r in records)
    duplicates = sum(copies.values()) - len(want)
    print(f"{len(records)} score records for {len(want)} windows ({duplicates} duplicates)")
    assert worker.stop() == 0, f"SIGTERM should stop the worker cleanly\n{worker.log_tail()}"
