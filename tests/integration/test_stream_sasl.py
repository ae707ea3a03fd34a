"""Kafka with authentication (and encryption): listeners that require SASL (PLAIN), over
plaintext and over TLS.

A second, module-scoped broker listens on a plaintext port and on a ``SASL_PLAINTEXT`` port
with one account. Every client of the pipeline — topic creation, the worker's start-up topic
check and its consumer/producer (both engines), ``replay`` and the record reader — is pointed
at the SASL port with the ``kafka.security_protocol`` settings; the worker gets its password
from the environment, as a deployment would. Wrong credentials must stop the worker with an
error that says so. A third broker speaks ``SASL_SSL`` with a certificate of a CA made for the
test (``openssl``): clients trusting that CA (``kafka.ssl_cafile``) work end to end, clients
that do not are refused.
"""

from __future__ import annotations

import shutil
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


def _make_pki(root: Path) -> tuple[Path, Path]:
    """A CA and a ``localhost`` server certificate signed by it: (ca.pem, keystore.pem)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates (apt install openssl)")

    def sh(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    sh("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
       "-days", "2", "-subj", "/CN=ecgwatch test CA")  # fmt: skip
    sh("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
       "-subj", "/CN=localhost")  # fmt: skip
    (root / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    sh("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    sh("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.p8")
    keystore = root / "keystore.pem"
    keystore.write_text((root / "server.p8").read_text() + (root / "server.crt").read_text())
    return root / "ca.pem", keystore


@pytest.fixture(scope="module")
def sasl_ssl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(``localhost:PORT`` of a ``SASL_SSL`` listener, the CA file that signed its cert)."""
    from ecgwatch import broker

    pki = tmp_path_factory.mktemp("pki")
    ca, keystore = _make_pki(pki)
    data_dir: Path = tmp_path_factory.mktemp("kafka-sasl-ssl")
    port, controller_port, ssl_port = broker.free_ports(3)
    broker.start(
        port,
        data_dir,
        controller_port,
        sasl_port=ssl_port,
        sasl_users={USER: PASSWORD},
        ssl_keystore_pem=keystore,
    )
    try:
        yield f"localhost:{ssl_port}", ca
    finally:
        broker.stop(data_dir)


def _topics(bootstrap: str, name: str, security: KafkaSecurity = SECURITY) -> TopicNames:
    names = TopicNames(f"{name}.windows", f"{name}.scores", f"{name}.alerts", f"{name}.dlq")
    specs = default_topics(
        2, windows=names.windows, scores=names.scores, alerts=names.alerts, dlq=names.dlq
    )
    create_topics(bootstrap, specs, security=security)
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
    # The broker answers a wrong password with an error response, but on a loaded machine it
    # has been seen to close the socket first (CI); both messages must lead to the credentials.
    rejected = last.startswith("ecgwatch worker: error: Kafka at")
    assert rejected or "closes the connection during the SASL handshake" in last, last
    assert not rejected or "authentication failed" in last, last
    assert f"sasl_username={USER!r}" in last and "ECGWATCH_KAFKA__SASL_PASSWORD" in last
    assert "not-the-password" not in proc.stderr + proc.stdout


def test_tls_listener_refuses_a_client_that_does_not_trust_its_ca(
    sasl_ssl: tuple[str, Path],
) -> None:
    bootstrap, _ca = sasl_ssl
    untrusting = KafkaSecurity("SASL_SSL", "PLAIN", USER, PASSWORD)  # system CAs only
    with pytest.raises(PipelineError):
        create_topics(bootstrap, default_topics(1), timeout_s=5, security=untrusting)


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_every_window_is_scored_over_sasl_ssl(
    engine: str,
    sasl_ssl: tuple[str, Path],
    seed_model: SeedModel,
    ecg_arrays: tuple,
    tmp_path: Path,
) -> None:
    bootstrap, ca = sasl_ssl
    security = KafkaSecurity("SASL_SSL", "PLAIN", USER, PASSWORD, ssl_cafile=str(ca))
    topics = _topics(bootstrap, f"ssl-{engine}", security)
    env = {
        **_env(),
        "ECGWATCH_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "ECGWATCH_KAFKA__SSL_CAFILE": str(ca),
        "ECGWATCH_WORKER__ENGINE": engine,
    }
    pool = WorkerPool(seed_model.registry, bootstrap, tmp_path)
    try:
        pool.start(topics, env=env)
        x = np.asarray(ecg_arrays[0][:N])
        replay(x, bootstrap=bootstrap, topic=topics.windows, progress=None, security=security)
        scores = list(
            read_records(bootstrap, topics.scores, timeout_s=90, max_records=N, security=security)
        )
    finally:
        pool.close()
    assert len({(r["device_id"], r["seq"]) for r in scores}) == N
