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
    return _cpu_s(_tree_pids(pid))


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has been busy (not idle or waiting on I/O)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICK


def _tree_pids(pid: int) -> list[int]:
    children = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _cpu_s(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            f = _stat_fields(p)
        except OSError:  # exited
            continue
        total += (int(f[11]) + int(f[12])) / _TICK
    return total


class CpuSplit:
    """Cores used by a worker, the broker and the rest over a stretch of wall time.

    A sampler thread reads the CPU counters every ``interval_s`` from :meth:`start`
    until :meth:`stop`; :meth:`between` then gives the split over any stretch inside that,
    such as from the worker's first batch to the broker's append of its last score.

    Parameters
    ----------
    worker_pid : int
        The worker (or its supervisor: its scorer processes count with it).
    broker_pid : int or None
        The broker's JVM; None when not known (a broker given by ``--bootstrap``): its share
        is then part of ``other``.
    interval_s : float
        Seconds between samples.
    """

    #: Seconds between looks for new processes in the worker's tree (a scan of /proc).
    RESCAN_S = 0.5

    def __init__(self, worker_pid: int, broker_pid: int | None, interval_s: float = 0.05) -> None:
        self.worker_pid = worker_pid
        self.broker_pid = broker_pid
        self.interval_s = interval_s
        #: (epoch seconds, worker CPU s, broker CPU s, machine busy s), oldest first.
        self.samples: list[tuple[float, float, float, float]] = []
        self._stop = threading.Event()

    def sample(self, pids: list[int]) -> None:
        """Append one reading of the counters (``pids``: the worker's process tree)."""
        broker = _cpu_s([self.broker_pid]) if self.broker_pid is not None else 0.0
        self.samples.append((time.time(), _cpu_s(pids), broker, machine_busy_s()))

    def start(self) -> None:
        """Start sampling, in a thread of its own, until :meth:`stop`."""

        def run() -> None:
            pids, scanned = [self.worker_pid], 0.0
            while not self._stop.is_set():
                if time.monotonic() - scanned >= self.RESCAN_S:
                    pids, scanned = _tree_pids(self.worker_pid), time.monotonic()
                self.sample(pids)
                self._stop.wait(self.interval_s)

        threading.Thread(target=run, daemon=True).start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()

    def between(self, t0: float, t1: float) -> dict[str, float | None] | None:
        """Cores used from ``t0`` to ``t1`` (epoch seconds), from the samples nearest inside
        them: ``worker``, ``broker`` (None when unknown), ``other`` and ``seconds``; None
        when fewer than two samples fall in between."""
        inside = [s for s in list(self.samples) if t0 <= s[0] <= t1]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        begin, end = inside[0], inside[-1]
        wall = end[0] - begin[0]
        worker, broker, busy = ((end[i] - begin[i]) / wall for i in (1, 2, 3))
        return {
            "worker": round(worker, 3),
            "broker": round(broker, 3) if self.broker_pid is not None else None,
            "other": round(max(busy - worker - broker, 0.0), 3),
            "seconds": round(wall, 3),
        }
