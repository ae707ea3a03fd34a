"""How ``ecgwatch`` ends when its output goes nowhere."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.stream import REPO, ecgwatch_env

#: A command that writes far more than a pipe holds (the ``devices`` command's code replaced).
_FLOOD = """
from ecgwatch import cli
from ecgwatch.commands import devices

def flood(args):
    for i in range(200_000):
        print(f"line {i} " + "x" * 80)
    return 0

devices.run = flood
raise SystemExit(cli.main(["devices", "http://127.0.0.1:1"]))
"""


def test_a_reader_that_goes_away_ends_it_quietly() -> None:
    """`ecgwatch alerts ... | head` must not end in a BrokenPipeError traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _FLOOD],
        cwd=REPO,
        env=ecgwatch_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("line 0 ")
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err
