"""Kafka with authentication: a broker whose client listener requires SASL (PLAIN).

A second, module-scoped broker listens on a plaintext port and on a ``SASL_PLAINTEXT`` port
with one account. Every client of the pipeline — topic creation, the worker's start-up topic
check and its consumer/producer (both engines), ``replay`` and the record reader — is pointed
at the SASL port with the ``kafka.security_protocol`` settings; the worker gets its password
from the environment, as a deployment would. Wrong credentials must stop the worker with an
error that says so.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.replay import replay
from pipeline.security import KafkaSecurity
from pipeline.settings import TopicNames
from pipeline.tail import read_records
from pipeline.topics import create_topics, default_topics
from tests.integration.conftest import SeedModel
from tests.integration.stream import REPO, WorkerPool, ecgwatch_env, topics_env

pytestmark = pytest.mark.integration

USER, PASSWORD = "ecg-worker", "s3cret-for-tests"
SECURITY = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", USER, PASSWORD)
N = 120


def _env(password: str = PASSWORD) -> dict[str, str]:
    return {
        "ECGWATCH_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ECGWATCH_KAFKA__SASL_MECHANISM": "PLAIN",
        "ECGWATCH_KAFKA__SASL_USERNAME": USER,
        "ECGWATCH_KAFKA__SASL_PASSWORD": password,
    }


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``localhost:PORT`` of a broker's SASL_PLAINTEXT listener (account USER/PASSWORD)."""
    from ecgwatch import broker

    data_dir: Path = tmp_path_factory.mktemp("kafka-sasl")
    port, controller_port, sasl_port = broker.free_ports(3)
    broker.start(port, data_dir, controller_port, sasl_port=sasl_port, sasl_users={USER: PASSWORD})
    try:
        yield f"localhost:{sasl_port}"
    finally:
        broker.stop(data_dir)


def _topics(bootstrap: str, name: str) -> TopicNames:
    names = TopicNames(f"{name}.windows", f"{name}.scores", f"{name}.alerts", f"{name}.dlq")
    specs = default_topics(
        2, windows=names.windows, scores=names.scores, alerts=names.alerts, dlq=names.dlq
    )
    create_topics(bootstrap, specs, security=SECURITY)
    return names


def test_the_sasl_listener_refuses_a_client_without_credentials(sasl_bootstrap: str) -> None:
    with pytest.raises(PipelineError):
        create_topics(sasl_bootstrap, default_topics(1), timeout_s=5)


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_every_window_is_scored_over_sasl(
    engine: str,
    sasl_bootstrap: str,
    seed_model: SeedModel,
    ecg_arrays: tuple,
    tmp_path: Path,
) -> None:
    topics = _topics(sasl_bootstrap, f"sasl-{engine}")
    pool = WorkerPool(seed_model.registry, sasl_bootstrap, tmp_path)
    try:
        pool.start(topics, env={**_env(), "ECGWATCH_WORKER__ENGINE": engine})
        x = np.asarray(ecg_arrays[0][:N])
        stats = replay(
            x, bootstrap=sasl_bootstrap, topic=topics.windows, progress=None, security=SECURITY
        )
        assert stats.sent == N
        scores = list(
            read_records(
                sasl_bootstrap, topics.scores, timeout_s=90, max_records=N, security=SECURITY
            )
        )
    finally:
        pool.close()
    assert len({(r["device_id"], r["seq"]) for r in scores}) == N


def test_wrong_password_stops_the_worker_with_an_authentication_error(
    sasl_bootstrap: str, seed_model: SeedModel
) -> None:
    topics = _topics(sasl_bootstrap, "sasl-wrong")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecgwatch",
            "worker",
            "--registry",
            str(seed_model.registry),
            "--bootstrap",
            sasl_bootstrap,
            "--metrics-port",
            "0",
        ],
        cwd=REPO,
        env=ecgwatch_env({**topics_env(topics), **_env("not-the-password")}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ecgwatch worker: error: Kafka at"), proc.stderr[-2000:]
    assert "authentication failed" in last and f"sasl_username={USER!r}" in last
    assert "ECGWATCH_KAFKA__SASL_PASSWORD" in last
    assert "not-the-password" not in proc.stderr + proc.stdout
