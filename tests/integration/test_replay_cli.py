"""``ecgwatch replay`` off a terminal (as in CI): plain progress lines, no bar, no ``\\r``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.stream import REPO, TopicReader, ecgwatch_env, new_topics

pytestmark = pytest.mark.integration


def test_replay_prints_plain_progress_lines(kafka_bootstrap: str, shared_data: Path) -> None:
    topics = new_topics(kafka_bootstrap, "replaycli", partitions=1)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "ecgwatch", "replay", "--data", str(shared_data)),
            *("--bootstrap", kafka_bootstrap, "--topic", topics.windows, "--devices", "3"),
        ],
        cwd=REPO,
        env=ecgwatch_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[replay]")]
    assert lines and lines[-1].startswith("[replay] 1000/1000 windows (100%)"), proc.stderr
    assert "\r" not in proc.stderr and "\x1b[" not in proc.stderr
    assert "[replay] sent 1000 windows" in proc.stdout
    with TopicReader(kafka_bootstrap, topics.windows) as reader:
        assert len(reader.drain()) == 1000


@pytest.mark.parametrize("continuous", [False, True])
def test_replay_to_a_topic_that_does_not_exist_says_so_at_once(
    kafka_bootstrap: str, shared_data: Path, continuous: bool
) -> None:
    """Not the Kafka client's 60 s metadata wait and a traceback (a forgotten `topics
    create`, or a typo in --topic)."""
    missing = "replaycli.no.such.topic"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "ecgwatch", "replay", "--data", str(shared_data)),
            *("--bootstrap", kafka_bootstrap, "--topic", missing),
            *(("--continuous",) if continuous else ()),
        ],
        cwd=REPO,
        env=ecgwatch_env(),
        capture_output=True,
        text=True,
        timeout=50,  # well under the 60 s the client would wait
    )
    assert proc.returncode != 0
    assert f"topics ['{missing}'] do not exist on {kafka_bootstrap}" in proc.stderr
    assert "ecgwatch topics create" in proc.stderr and "Traceback" not in proc.stderr
