"""Two workers in one consumer group: a second worker joins mid-stream, then the first one
leaves (SIGTERM) mid-stream. Both rebalances must keep at-least-once delivery: every window
of the input topic ends up with a score record, duplicates carry the same score, and the
partitions really were shared (the second worker scored windows while the first still ran).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.replay import device_of, replay
from tests.integration.stream import WorkerPool, every_window_scored, new_topics, wait_until

pytestmark = pytest.mark.integration

DEVICES = 25
#: Window ranges sent in turn; each start is a multiple of DEVICES so seq numbers continue.
CHUNKS = ((0, 1500), (1500, 3000), (3000, 4000), (4000, 5000))
#: For the Faust engine (ECGWATCH_TEST_ENGINE=faust): its 60 s default session timeout.
FAST_FAILOVER = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"}


def test_join_and_leave_mid_stream_lose_no_window(
    kafka_bootstrap: str, shared_data: Path, worker_pool: WorkerPool
) -> None:
    from ecgwatch.cli_common import load_windows

    x, _ = load_windows(str(shared_data), split="all")
    x = np.asarray(x[: CHUNKS[-1][1]])
    topics = new_topics(kafka_bootstrap, "it.rebalance", partitions=4)
    group = f"it-rb-{uuid.uuid4().hex[:8]}"

    def send(lo: int, hi: int, rate: float | None) -> None:
        replay(
            x[lo:hi],
            bootstrap=kafka_bootstrap,
            topic=topics.windows,
            devices=DEVICES,
            rate=rate,
            progress=None,
            seq_offset=lo // DEVICES,
        )

    first = worker_pool.start(topics, group_id=group, env=FAST_FAILOVER)
    send(*CHUNKS[0], None)
    wait_until(lambda: first.scored() >= 500, 60, "the first worker to score", first)

    # Join under load: the second worker starts while the next chunk streams in.
    errors: list[BaseException] = []

    def send_async(lo: int, hi: int, rate: float) -> threading.Thread:
        def run() -> None:
            try:
                send(lo, hi, rate)
            except BaseException as exc:  # reported below
                errors.append(exc)

        t = threading.Thread(target=run, name=f"replay-{lo}")
        t.start()
        return t

    sender = send_async(*CHUNKS[1], 300.0)
    second = worker_pool.start(topics, group_id=group, env=FAST_FAILOVER, ready=False)
    second.wait_ready()
    wait_until(
        lambda: second.metric("ecg_consumer_assigned_partitions") > 0,
        90,
        "the second worker to be assigned partitions",
        first,
        second,
    )
    sender.join(timeout=120)
    send(*CHUNKS[2], None)
    wait_until(lambda: second.scored() > 0, 60, "the second worker to score", first, second)
    split = (
        first.metric("ecg_consumer_assigned_partitions"),
        second.metric("ecg_consumer_assigned_partitions"),
    )

    # Leave under load: SIGTERM the first worker while the last chunk streams in.
    sender = send_async(*CHUNKS[3], 500.0)
    time.sleep(0.5)
    assert first.stop() == 0, f"SIGTERM should stop the worker cleanly\n{first.log_tail()}"
    sender.join(timeout=120)
    assert not errors, errors

    want = {device_of(i, DEVICES) for i in range(len(x))}
    records = every_window_scored(kafka_bootstrap, topics.scores, want, second.log_tail)
    assert split[0] > 0 and split[1] > 0 and sum(split) == 4, f"partitions not shared: {split}"
    second.assert_running()
    copies = Counter((r["device_id"], r["seq"]) for r in records)
    dups = sum(copies.values()) - len(want)
    print(f"{len(records)} score records for {len(want)} windows ({dups} duplicates)")
