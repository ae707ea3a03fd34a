"""`ecgwatch demo` end to end, as the README's main command runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_scores_everything_and_matches_offline_accuracy(
    tmp_path: Path, shared_data: Path
) -> None:
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecgwatch",
            "demo",
            "--registry",
            str(tmp_path / "models"),
            "--data",
            str(shared_data),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    s = json.loads(out.read_text())
    assert s["valid_windows"] == 1000 and s["scored"] == 1000 and s["missing"] == 0
    assert s["streamed_accuracy"] == s["offline_accuracy"]
    assert s["streamed_accuracy"] >= 0.93
    assert s["dead_lettered"] == 5
    assert 0 < s["alerts"] <= s["anomalies"]
    assert "ecgwatch demo — summary" in proc.stdout
    # everything it started is gone again
    assert not list((Path(".ecgwatch") / "demo").glob("run-*/kafka/broker.pid"))
