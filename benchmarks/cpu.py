"""How a measurement's CPU splits: the worker's processes, the broker, everything else.

Read from ``/proc`` (Linux): a process's ``utime + stime`` (its descendants' too, so a
``worker.processes: 2`` supervisor counts with its scorers) and the machine's busy time from
``/proc/stat``. On the 2-core development machine the broker and the workers share the same
cores, so a worker row's windows/s means little without this split.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["CpuSplit", "machine_busy_s", "tree_cpu_s"]

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):  # exited meanwhile
            continue
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants."""
    children = _children()
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        total += (int(f[11]) + int(f[12])) / _TICK  # utime, stime
        todo += children.get(p, [])
    return total


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has been busy (not idle or waiting on I/O)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICK


class CpuSplit:
    """Cores used by a worker, the broker and the rest between :meth:`start` and :meth:`stop`.

    Parameters
    ----------
    worker_pid : int
        The worker (or its supervisor: its scorer processes count with it).
    broker_pid : int or None
        The broker's JVM; None when not known (a broker given by ``--bootstrap``): its share
        is then part of ``other``.
    """

    def __init__(self, worker_pid: int, broker_pid: int | None) -> None:
        self.worker_pid = worker_pid
        self.broker_pid = broker_pid
        self._start: tuple[float, float, float, float] | None = None
        self._lock = threading.Lock()

    def _now(self) -> tuple[float, float, float, float]:
        broker = tree_cpu_s(self.broker_pid) if self.broker_pid is not None else 0.0
        return time.monotonic(), tree_cpu_s(self.worker_pid), broker, machine_busy_s()

    def start(self) -> None:
        """Take the first reading."""
        with self._lock:
            self._start = self._now()

    def start_when(self, ready: Callable[[], bool], poll_s: float = 0.01) -> None:
        """Take the first reading, in a thread, once ``ready()`` (e.g. the first batch)."""

        def wait() -> None:
            while not ready():
                time.sleep(poll_s)
            self.start()

        threading.Thread(target=wait, daemon=True).start()

    def stop(self) -> dict[str, float | None] | None:
        """Cores used since :meth:`start` (CPU seconds / wall seconds), or None if it never
        started: ``worker``, ``broker`` (None when unknown), ``other`` and ``seconds``."""
        end = self._now()
        with self._lock:
            begin = self._start
        if begin is None or end[0] <= begin[0]:
            return None
        wall = end[0] - begin[0]
        worker, broker, busy = ((end[i] - begin[i]) / wall for i in (1, 2, 3))
        return {
            "worker": round(worker, 3),
            "broker": round(broker, 3) if self.broker_pid is not None else None,
            "other": round(max(busy - worker - broker, 0.0), 3),
            "seconds": round(wall, 3),
        }
