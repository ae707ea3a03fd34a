"""Drift on the real broker, both engines: streaming the test beats keeps ``ecg_score_drift``
and ``ecg_input_drift`` under the alert bound (0.25); streaming shifted beats (an offset of 0.3,
as an amplifier's DC offset would add) takes both over it well within 2 minutes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.replay import replay
from tests.integration.stream import WorkerPool, new_topics, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The EcgDataDrift rule's bound (deploy/prometheus/rules/alerts.yml).
BOUND = 0.25


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_test_beats_stay_low_and_shifted_beats_cross_the_bound(
    engine: str, kafka_bootstrap: str, shared_data: Path, worker_pool: WorkerPool
) -> None:
    from ecgwatch.cli_common import load_windows

    x, _ = load_windows(str(shared_data))  # the seed's 1,000 test-split beats
    x = np.asarray(x, dtype=np.float32)
    topics = new_topics(kafka_bootstrap, f"it.drift.{engine}", partitions=2)
    worker = worker_pool.start(topics, env={"ECGWATCH_WORKER__ENGINE": engine})
    replay(x, bootstrap=kafka_bootstrap, topic=topics.windows, devices=10, progress=None)
    wait_until(lambda: worker.scored() >= 1000, 90, "the test beats scored", worker)
    score, low, high = (
        worker.metric("ecg_score_drift"),
        worker.metric("ecg_input_drift", statistic="min"),
        worker.metric("ecg_input_drift", statistic="max"),
    )
    assert max(score, low, high) < BOUND, (score, low, high)

    started = time.monotonic()
    replay(
        x + np.float32(0.3),
        bootstrap=kafka_bootstrap,
        topic=topics.windows,
        devices=10,
        rate=500.0,
        progress=None,
        seq_offset=10_000,
    )
    wait_until(
        lambda: (
            worker.metric("ecg_score_drift") > BOUND
            and worker.metric("ecg_input_drift", statistic="max") > BOUND
        ),
        120,
        "score and input drift over the bound",
        worker,
    )
    assert time.monotonic() - started < 120
    worker.assert_running()
