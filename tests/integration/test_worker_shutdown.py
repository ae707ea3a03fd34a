"""Both engines, as a new user runs them: started in an empty folder with the default data
directory, and stopped with SIGTERM after the broker went away — the process ends within its
shutdown limit and frees the metrics port (issue 13: Faust died on the missing
`.ecgwatch/worker`, then hung in shutdown for minutes with the port still bound)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecgwatch import broker
from ecgwatch.errors import EcgwatchError
from pipeline.lifecycle import SHUTDOWN_LIMIT_S
from pipeline.topics import create_topics
from tests.integration.conftest import SeedModel
from tests.integration.stream import ecgwatch_env, http_status

pytestmark = pytest.mark.integration

#: Process start, model load and JVM teardown on a busy 2-core machine, beyond the limit.
SLACK_S = 20.0


def _ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
        assert proc.poll() is None, f"worker exited ({proc.returncode}):\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"worker not ready:\n{log.read_text()[-4000:]}"
        time.sleep(0.25)


def _private_broker(kafka_dir: Path) -> tuple[int, int]:
    """Start a broker of this test's own (it is stopped mid-test); its port and a free metrics
    port. One retry on fresh ports: on a loaded machine another process can take a port
    between ``free_ports`` and the JVM's bind, and that is not what this test is about."""
    for attempt in range(2):
        port, controller, metrics_port = broker.free_ports(3)
        try:
            broker.start(port, kafka_dir, controller)
            return port, metrics_port
        except EcgwatchError:
            broker.stop(kafka_dir, timeout_s=10)
            if attempt:
                raise
    raise AssertionError("unreachable")


def _port_free(port: int) -> bool:
    """Whether a restarted worker could bind ``port`` (as its server does: SO_REUSEADDR, so
    the probes' connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_fresh_folder_start_and_bounded_shutdown_without_a_broker(
    engine: str, seed_model: SeedModel, tmp_path: Path
) -> None:
    kafka_dir = tmp_path / "kafka"
    port, metrics_port = _private_broker(kafka_dir)
    try:
        bootstrap = f"localhost:{port}"
        create_topics(bootstrap)
        cwd = tmp_path / "fresh"  # no .ecgwatch/ here: the default data_dir must be created
        cwd.mkdir()
        log = tmp_path / "worker.log"
        cmd = [sys.executable, "-m", "ecgwatch", "worker", "--registry", str(seed_model.registry)]
        cmd += ["--bootstrap", bootstrap, "--metrics-port", str(metrics_port)]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=ecgwatch_env({"ECGWATCH_WORKER__ENGINE": engine}),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _ready(metrics_port, proc, log)
            assert (cwd / ".ecgwatch" / "worker").is_dir() or engine == "batch"
        finally:
            broker.stop(kafka_dir, timeout_s=10)
        time.sleep(1.0)  # the clients notice the broker is gone
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_LIMIT_S + SLACK_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            pytest.fail(
                f"{engine}: still running {SHUTDOWN_LIMIT_S + SLACK_S:.0f} s after SIGTERM\n"
                + log.read_text()[-4000:]
            )
        took = time.monotonic() - t0
        print(f"{engine}: exited {proc.returncode} {took:.1f} s after SIGTERM")
        # 0: a clean stop; 70: the watchdog ended a shutdown the broker's absence stalled.
        # Either way nothing unacknowledged was committed; a crash (1) is not acceptable.
        assert proc.returncode in (0, 70), log.read_text()[-4000:]
        assert _port_free(metrics_port), "the metrics port is still bound after exit"
    finally:
        broker.stop(kafka_dir, timeout_s=10)
