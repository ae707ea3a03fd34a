"""``_wait_ready`` judges its own child by ``poll()``: a JVM still starting (or, a moment
after ``Popen``, a child not yet exec'd into java) is not "exited", one that ended is."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ecgwatch.broker.process import _wait_ready
from ecgwatch.errors import EcgwatchError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def test_a_child_still_starting_is_waited_for_not_called_exited(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("Formatting metadata directory\n")
    # A live child whose command line is not Kafka's, as one is before its exec of java.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(EcgwatchError, match="did not answer on localhost"):
            _wait_ready(proc, _free_port(), log, timeout_s=1.5)
    finally:
        proc.kill()
        proc.wait()


def test_a_child_that_ended_is_reported_with_its_exit_status(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("Error: no such class\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(EcgwatchError, match=r"exited during start-up \(exit status 3\)"):
        _wait_ready(proc, _free_port(), log, timeout_s=5)
