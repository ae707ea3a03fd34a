"""``worker.processes``: N scoring processes in one consumer group, one supervisor.

One Python process scores on one core at a time (the GIL), so a worker that should use every
core runs several processes. They are ordinary workers of the same consumer group — Kafka
splits the partitions between them and moves them when one stops — started and stopped
together by this supervisor:

* process *i* serves its metrics on ``worker.metrics_port + i`` (one port per process,
  each a Prometheus target of its own), keeps its Faust state in ``worker.data_dir/i``,
  and writes its first batch's time to ``worker.started_file`` + ``.i``; the supervisor
  writes the earliest of those to ``worker.started_file`` itself (the worker's start is its
  first process's start, whichever gets partitions first);
* SIGTERM / SIGINT to the supervisor is passed to every process; the supervisor returns once
  all have exited, with the first non-zero exit code;
* if one process exits on its own, the others are stopped too and the supervisor exits with
  that code: an orchestrator sees one failed worker and restarts it, rather than a worker
  quietly running at a fraction of its capacity.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.lifecycle import SHUTDOWN_LIMIT_S, write_started_file
from pipeline.settings import WorkerSettings

__all__ = ["child_environment", "run_processes"]

ENV_PREFIX = "ECGWATCH_WORKER__"


def child_environment(settings: WorkerSettings, index: int) -> dict[str, str]:
    """Environment overrides of process ``index``: one process, its own port and state.

    Parameters
    ----------
    settings : WorkerSettings
        The supervisor's settings.
    index : int
        0 … ``processes - 1``.

    Returns
    -------
    dict
        ``ECGWATCH_WORKER__*`` variables (environment overrides win over the file; command-line
        flags given to the supervisor are not passed on, they are in these variables).
    """
    port = settings.metrics_port + index if settings.metrics_port else 0
    env = {
        f"{ENV_PREFIX}PROCESSES": "1",
        f"{ENV_PREFIX}METRICS_PORT": str(port),
        f"{ENV_PREFIX}DATA_DIR": str(Path(settings.data_dir) / str(index)),
        f"{ENV_PREFIX}STARTED_FILE": f"{settings.started_file}.{index}"
        if settings.started_file
        else "",
        # The flags the supervisor was given, so a child needs none of its own.
        f"{ENV_PREFIX}REGISTRY": settings.registry,
        f"{ENV_PREFIX}MODEL_VERSION": settings.model_version,
        f"{ENV_PREFIX}BATCH_SIZE": str(settings.batch_size),
        f"{ENV_PREFIX}BATCH_TIMEOUT_S": repr(settings.batch_timeout_s),
        f"{ENV_PREFIX}DEVICE": settings.device,
        f"{ENV_PREFIX}ENGINE": settings.engine,
        "ECGWATCH_KAFKA__BOOTSTRAP": settings.bootstrap,
        "ECGWATCH_KAFKA__GROUP_ID": settings.group_id,
    }
    return env


def run_processes(argv: Sequence[str], settings: WorkerSettings, *, poll_s: float = 0.2) -> int:
    """Run ``settings.processes`` copies of the worker command ``argv`` until they end.

    Parameters
    ----------
    argv : sequence of str
        The command that runs one worker (e.g. ``python -m ecgwatch worker --config FILE``);
        each copy gets :func:`child_environment` on top of this process's environment.
    settings : WorkerSettings
        Provides ``processes`` and the per-process values.
    poll_s : float
        How often the processes are checked.

    Returns
    -------
    int
        0 when every process ended cleanly after a stop signal; else the first non-zero code.
    """
    stopping = [False]

    def on_signal(signum: int, _frame: object) -> None:
        stopping[0] = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    procs: list[subprocess.Popen[bytes]] = []
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i in range(settings.processes):
            env = {**os.environ, **child_environment(settings, i)}
            procs.append(subprocess.Popen(list(argv), env=env))
        print(
            f"[worker] supervisor: {settings.processes} processes (pids "
            f"{', '.join(str(p.pid) for p in procs)}) in group {settings.group_id}",
            flush=True,
        )
        return _supervise(procs, stopping, poll_s, _StartedFile(settings))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _StartedFile:
    """Copies the earliest of the processes' ``started_file.i`` to ``started_file``."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.target = Path(settings.started_file) if settings.started_file else None
        self.parts = [Path(f"{settings.started_file}.{i}") for i in range(settings.processes)]
        self.done = self.target is None
        for part in self.parts if self.target else []:
            part.unlink(missing_ok=True)  # a previous run's must not count

    def check(self) -> None:
        if self.done or self.target is None:
            return
        times = []
        for part in self.parts:
            try:
                times.append(float(part.read_text()))
            except (OSError, ValueError):  # not written (yet), or mid-rename
                continue
        if times:
            write_started_file(self.target, min(times))
            self.done = True


def _supervise(
    procs: list[subprocess.Popen[bytes]],
    stopping: list[bool],
    poll_s: float,
    started: _StartedFile,
) -> int:
    """Wait for all processes; when one ends unasked, stop the rest."""
    first_failure = 0
    while True:
        started.check()
        codes = [p.poll() for p in procs]  # every process, every round (no short-circuit)
        if all(c is not None for c in codes):
            break
        ended = [p for p in procs if p.returncode is not None]
        if ended and not stopping[0]:
            first_failure = next((p.returncode for p in ended if p.returncode), 1)
            print(
                f"[worker] supervisor: process {ended[0].pid} exited ({ended[0].returncode}); "
                "stopping the others",
                flush=True,
            )
            stopping[0] = True
            _stop_all(procs)
        time.sleep(poll_s)
    return first_failure or next((c for c in codes if c), 0)


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_LIMIT_S + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
