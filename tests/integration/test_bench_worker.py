"""``ecgwatch bench`` learns of the worker's first batch from ``worker.started_file``, not
from the worker's output."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.integration.conftest import SeedModel

pytestmark = pytest.mark.integration

N = 400


def test_bench_worker_reads_the_start_from_the_started_file(
    kafka_bootstrap: str, tmp_path: Path, seed_model: SeedModel
) -> None:
    from benchmarks.kafka_io import create_topics, fill, read_score_times, wait_committed
    from benchmarks.worker_runs import Worker
    from pipeline.binary import binary_message

    run = uuid.uuid4().hex[:8]
    windows, prefix = f"it.{run}.windows", f"it.{run}"
    create_topics(
        kafka_bootstrap,
        {windows: 2, **{f"{prefix}.{k}": 2 for k in ("scores", "alerts", "dlq")}},
        set(),
    )
    fill(
        kafka_bootstrap,
        windows,
        np.random.default_rng(0).normal(size=(N, 140)),
        binary_message,
        devices=4,
    )
    before = time.time()
    w = Worker(tmp_path, kafka_bootstrap, str(seed_model.registry), windows, prefix)
    try:
        assert wait_committed(kafka_bootstrap, prefix, windows, N, timeout_s=180), w.tail()
    finally:
        w.stop()
    got, last = read_score_times(kafka_bootstrap, w.scores, N, timeout_s=60)
    assert got == N
    assert w.first_at is not None, f"no started file; worker output:\n{w.tail()}"
    assert before < w.first_at <= last
    # Not parsed from stdout: the worker's lines are kept only for error messages.
    assert (tmp_path / f"{prefix}.started").is_file()
