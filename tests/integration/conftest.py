"""Fixtures for tests against a real Kafka broker.

``kafka_bootstrap`` (session-scoped) starts one local Apache Kafka broker (``ecgwatch.broker``)
on free ports in a temporary data dir, creates the pipeline topics and stops the broker at the
end. Set ``ECGWATCH_TEST_BOOTSTRAP=HOST:PORT`` to use a running broker instead (the topics are
still created, idempotently).

``seed_model`` trains the ``seed`` preset once per session; ``worker_pool`` /
``module_worker_pool`` start ``ecgwatch worker`` subprocesses (see ``stream.py``) and stop
them at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.integration.stream import WorkerPool

__all__ = ["SeedModel", "kafka_bootstrap", "module_worker_pool", "seed_model", "worker_pool"]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``localhost:PORT`` of a broker that has the four pipeline topics."""
    from ecgwatch import broker
    from pipeline.topics import create_topics

    external = os.environ.get("ECGWATCH_TEST_BOOTSTRAP")
    if external:
        create_topics(external)
        yield external
        return
    data_dir: Path = tmp_path_factory.mktemp("kafka")
    port, controller_port = broker.free_ports(2)
    broker.fetch()
    st = broker.start(port, data_dir, controller_port)
    try:
        create_topics(st.bootstrap or f"localhost:{port}")
        yield f"localhost:{port}"
    finally:
        broker.stop(data_dir)


@dataclass(frozen=True)
class SeedModel:
    """The ``seed`` preset trained once per session, and its offline test-split scores."""

    registry: Path
    artifact: Path
    threshold: float
    version: str
    offline_scores: np.ndarray


@pytest.fixture(scope="session")
def seed_model(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> SeedModel:
    """Train ``seed`` into a temporary registry (``ECGWATCH_TEST_REGISTRY`` reuses one).

    ``offline_scores`` are ``training.evaluate_artifact``'s, in test-split order.
    """
    from detector import ModelRegistry
    from training import evaluate_artifact, load_config, train

    external = os.environ.get("ECGWATCH_TEST_REGISTRY")
    if external:
        registry = Path(external)
    else:
        registry = tmp_path_factory.mktemp("registry")
        train(load_config("seed"), data=shared_data, registry=registry)
    artifact = ModelRegistry(registry).resolve()
    evaluation = evaluate_artifact(artifact, data=shared_data)
    loaded = ModelRegistry(registry).load()
    return SeedModel(
        registry,
        artifact,
        float(loaded.threshold.value),
        loaded.version,
        np.asarray(evaluation.scores, dtype=np.float64),
    )


@pytest.fixture(scope="session")
def continuous_model(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A registry with the ``continuous`` preset (for beats the stage cuts; ~75 s to train)."""
    from training import load_config, train

    registry = tmp_path_factory.mktemp("registry-continuous")
    train(load_config("continuous"), data=shared_data, registry=registry)
    return registry


@pytest.fixture
def worker_pool(
    seed_model: SeedModel, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[WorkerPool]:
    """Start workers for one test (each with a fresh group id and data dir); all stopped after."""
    pool = WorkerPool(seed_model.registry, kafka_bootstrap, tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module")
def module_worker_pool(
    seed_model: SeedModel, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    """Like ``worker_pool``, for a worker shared by the tests of one module."""
    pool = WorkerPool(seed_model.registry, kafka_bootstrap, tmp_path_factory.mktemp("workers"))
    try:
        yield pool
    finally:
        pool.close()
