"""``benchmarks.cpu``: CPU time of a process tree, and a run's split of the cores."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.cpu import CpuSplit, machine_busy_s, tree_cpu_s

#: A parent that only waits, with a child that burns ``BURN_S`` of CPU, then both sleep.
BURN_S = 0.4
_SCRIPT = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import time
t = time.process_time()
while time.process_time() - t < {BURN_S}:
    pass
print("burnt", flush=True)
time.sleep(60)
'''], stdout=sys.stdout)
time.sleep(60)
"""


@pytest.fixture
def burner() -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    yield proc
    subprocess.run(["pkill", "-P", str(proc.pid)], check=False)
    proc.kill()
    proc.wait()


def test_a_tree_counts_its_childrens_cpu(burner: subprocess.Popen[str]) -> None:
    assert burner.stdout is not None
    assert burner.stdout.readline().strip() == "burnt"
    # The parent only waited; the child's busy loop is what counts.
    assert tree_cpu_s(burner.pid) >= BURN_S * 0.9


def test_a_gone_process_counts_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert tree_cpu_s(proc.pid) == 0.0


def test_the_split_is_cores_over_the_stretch_asked_for(burner: subprocess.Popen[str]) -> None:
    split = CpuSplit(burner.pid, None, interval_s=0.02)
    split.start()
    t0 = time.time()
    assert burner.stdout is not None
    assert burner.stdout.readline().strip() == "burnt"
    time.sleep(0.1)
    t1 = time.time()
    time.sleep(0.1)
    split.stop()
    got = split.between(t0, t1)
    assert got is not None
    # Most of the burn falls inside the stretch (the interpreter's start-up may not).
    assert got["worker"] is not None and got["worker"] * got["seconds"] >= BURN_S * 0.5
    assert got["seconds"] <= t1 - t0
    assert got["broker"] is None  # not known: its share is in "other"
    assert got["other"] is not None and got["other"] >= 0.0
    # After the burn the tree sleeps: a stretch there uses (almost) no core.
    late = split.between(t1, time.time())
    assert late is not None and late["worker"] is not None and late["worker"] < 0.2
    assert split.between(t1 + 100, t1 + 200) is None  # no samples there


def test_the_machine_is_busy_at_least_while_we_burn() -> None:
    before, t = machine_busy_s(), time.process_time()
    while time.process_time() - t < 0.2:
        pass
    assert machine_busy_s() - before >= 0.15
