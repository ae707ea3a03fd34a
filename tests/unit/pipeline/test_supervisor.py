"""worker.processes: per-process settings, and the supervisor's stop rules (real processes)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.errors import PipelineConfigError
from pipeline.settings import WorkerSettings
from pipeline.supervisor import child_environment, run_processes


def test_each_process_gets_its_port_state_and_the_supervisors_flags() -> None:
    s = WorkerSettings(
        processes=3,
        metrics_port=9200,
        data_dir="state",
        started_file="/tmp/started",
        bootstrap="b:1",
        group_id="g",
        batch_size=77,
    )
    envs = [child_environment(s, i) for i in range(3)]
    assert [e["ECGWATCH_WORKER__METRICS_PORT"] for e in envs] == ["9200", "9201", "9202"]
    assert [e["ECGWATCH_WORKER__DATA_DIR"] for e in envs] == [
        os.path.join("state", str(i)) for i in range(3)
    ]
    assert [e["ECGWATCH_WORKER__STARTED_FILE"] for e in envs] == [
        "/tmp/started.0",
        "/tmp/started.1",
        "/tmp/started.2",
    ]
    assert all(e["ECGWATCH_WORKER__PROCESSES"] == "1" for e in envs)  # no recursion
    assert all(e["ECGWATCH_KAFKA__GROUP_ID"] == "g" for e in envs)  # one consumer group
    assert all(e["ECGWATCH_WORKER__BATCH_SIZE"] == "77" for e in envs)
    assert (
        child_environment(WorkerSettings(processes=2, metrics_port=0), 1)[
            "ECGWATCH_WORKER__METRICS_PORT"
        ]
        == "0"
    )  # metrics off stays off


def test_the_child_environment_loads_back_into_the_same_settings() -> None:
    from ecgwatch.config import load_settings

    s = WorkerSettings(processes=2, batch_timeout_s=0.125, engine="faust", group_id="007")
    child = load_settings(environ=child_environment(s, 1))
    assert child.processes == 1 and child.batch_timeout_s == 0.125
    assert child.engine == "faust" and child.group_id == "007"


def test_processes_is_range_checked() -> None:
    with pytest.raises(PipelineConfigError, match="worker.processes: 0"):
        WorkerSettings(processes=0)


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _run_then_sigterm(code: str, settings: WorkerSettings, after_s: float) -> int:
    """``run_processes`` of ``code``, with SIGTERM to this (supervisor) process after_s in."""
    timer = threading.Timer(after_s, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        return run_processes(_child(code), settings, poll_s=0.05)
    finally:
        timer.cancel()


def test_one_process_failing_stops_the_others_and_gives_its_code() -> None:
    # Each child reads its index from its data dir; process 1 fails after a moment.
    code = (
        "import os, sys, time, signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "i = int(os.path.basename(os.environ['ECGWATCH_WORKER__DATA_DIR']))\n"
        "time.sleep(0.5)\n"
        "sys.exit(3 if i == 1 else 0) if i == 1 else time.sleep(60)\n"
    )
    t0 = time.monotonic()
    rc = run_processes(_child(code), WorkerSettings(processes=3, metrics_port=0), poll_s=0.05)
    assert rc == 3
    assert time.monotonic() - t0 < 30  # the sleeping ones were stopped, not waited for


def test_a_stop_signal_reaches_every_process() -> None:
    code = (
        "import sys, time, signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "time.sleep(60)\n"
        "sys.exit(9)\n"
    )
    rc = _run_then_sigterm(code, WorkerSettings(processes=2, metrics_port=0), after_s=1.5)
    assert rc == 0
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is restored


def test_the_started_file_gets_the_earliest_first_batch_of_any_process(tmp_path: Path) -> None:
    started = tmp_path / "started"
    # Process 1 consumes first (t=100), process 0 later (t=200); then both stop.
    code = (
        "import os, sys, time, signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "f = os.environ['ECGWATCH_WORKER__STARTED_FILE']\n"
        "i = int(f.rsplit('.', 1)[1])\n"
        "time.sleep(0.2 if i == 1 else 0.6)\n"
        "open(f, 'w').write('100.0' if i == 1 else '200.0')\n"
        "time.sleep(60)\n"
    )
    settings = WorkerSettings(processes=2, metrics_port=0, started_file=str(started))
    rc = _run_then_sigterm(code, settings, after_s=2.0)
    assert rc == 0 and float(started.read_text()) == 100.0
