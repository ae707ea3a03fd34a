"""End to end on the real broker: replay the seed test split through a worker subprocess.

One worker (module-scoped) on private topics serves both tests; the kcat test uses its own
device id (``dev-x``), which the replay never uses, so the tests read disjoint records.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.policy import PHASES, SEVERITIES, AlertPolicy
from pipeline.replay import device_of, replay
from pipeline.settings import TopicNames
from tests.integration.conftest import SeedModel
from tests.integration.stream import (
    SCORE_FIELDS,
    TopicReader,
    WorkerPool,
    WorkerProcess,
    by_window,
    new_topics,
)

pytestmark = pytest.mark.integration

DEVICES = 10
ALERT_FIELDS = {
    "schema_version",
    "episode_id",
    "phase",
    "kind",
    "condition",
    "priority",
    "first_ts",
    "last_ts",
    "anomalous_windows",
    "windows_seen",
    "peak_score",
    "alert_id",
    "device_id",
    "seq",
    "ts",
    "score",
    "threshold",
    "severity",
    "model_version",
    "detected_at",
}


@dataclass
class Streamed:
    topics: TopicNames
    worker: WorkerProcess
    x: np.ndarray
    scores: dict[tuple[str, int], dict[str, Any]]
    raw_scores: list[dict[str, Any]]


@pytest.fixture(scope="module")
def streamed(kafka_bootstrap: str, shared_data: Path, module_worker_pool: WorkerPool) -> Streamed:
    """The 1000-window test split replayed over 10 devices and every score read back."""
    from ecgwatch.cli_common import load_windows

    x, _ = load_windows(str(shared_data))
    assert len(x) == 1000
    topics = new_topics(kafka_bootstrap, "it.e2e")
    worker = module_worker_pool.start(topics)
    replay(x, bootstrap=kafka_bootstrap, topic=topics.windows, devices=DEVICES, progress=None)
    want = {device_of(i, DEVICES) for i in range(len(x))}
    with TopicReader(kafka_bootstrap, topics.scores) as reader:
        records = reader.until(
            lambda rs: want <= set(by_window(rs)), 90, "a score for every window", worker.log_tail
        )
    worker.assert_running()
    return Streamed(topics, worker, x, by_window(records), list(records))


def test_every_window_scored_like_offline(streamed: Streamed, seed_model: SeedModel) -> None:
    offline = seed_model.offline_scores
    assert len(offline) == len(streamed.x)
    got = np.array([streamed.scores[device_of(i, DEVICES)]["score"] for i in range(len(offline))])
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-5)
    streamed_anomalies = {
        i for i in range(len(offline)) if streamed.scores[device_of(i, DEVICES)]["anomaly"]
    }
    offline_anomalies = set(np.flatnonzero(offline > seed_model.threshold).tolist())
    assert streamed_anomalies == offline_anomalies
    assert 100 < len(offline_anomalies) < 900  # both classes present: the check means something
    for r in streamed.raw_scores:
        assert set(r) - {"_partition", "_offset"} == set(SCORE_FIELDS)
        assert r["threshold"] == pytest.approx(seed_model.threshold)
        assert r["model_version"] == seed_model.version
        assert r["scored_at"] >= r["ts"]
    # Re-deliveries may duplicate a window, never change its score.
    for r in streamed.raw_scores:
        assert r["score"] == streamed.scores[(r["device_id"], r["seq"])]["score"]


def expected_alerts(scores: dict[tuple[str, int], dict[str, Any]]) -> dict[str, str]:
    """Replay the episode policy (worker defaults) over each device's windows in seq order:
    ``{alert_id: phase}``."""
    policy = AlertPolicy()
    state: dict[str, Any] = {}
    out = {}
    for (device, seq), r in sorted(scores.items()):
        if not device.startswith("dev-0"):
            continue
        new, events = policy.step(
            state.get(device),
            device,
            seq,
            r["ts"],
            r["score"],
            r["threshold"],
            r["anomaly"],
            r["model_version"],
        )
        if new is not None:
            state[device] = new
        for phase, _ in events:
            out[policy.record_id(device, seq, phase, r["model_version"])] = phase
    return out


def test_alerts_follow_the_policy(
    streamed: Streamed, kafka_bootstrap: str, seed_model: SeedModel
) -> None:
    want = expected_alerts(streamed.scores)
    assert "start" in want.values(), "the replay should open episodes"
    with TopicReader(kafka_bootstrap, streamed.topics.alerts) as reader:
        # The replay's devices fall silent when it ends: their feed_stale records (technical,
        # tests/integration/test_feed_stale.py) are not the episode policy's.
        alerts = [
            a
            for a in reader.drain()
            if a["device_id"].startswith("dev-0") and a["kind"] == "physiological"
        ]
    for a in alerts:
        assert set(a) - {"_partition", "_offset"} == ALERT_FIELDS
        assert a["severity"] in SEVERITIES and a["phase"] in PHASES
        assert a["model_version"] == seed_model.version
        window = streamed.scores[(a["device_id"], a["seq"])]
        assert a["score"] == window["score"] and a["ts"] == window["ts"]
        assert window["anomaly"] or a["phase"] == "end"
        assert a["alert_id"] == AlertPolicy.record_id(
            a["device_id"], a["seq"], a["phase"], a["model_version"]
        )
    assert {a["alert_id"]: a["phase"] for a in alerts} == want
    # One start per episode.
    starts = [a["episode_id"] for a in alerts if a["phase"] == "start"]
    assert len(starts) == len(set(starts))


def _kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.skip("kcat is not installed (Debian package kcat)")
    return path


def test_kcat_round_trip(streamed: Streamed, kafka_bootstrap: str, seed_model: SeedModel) -> None:
    """A producer that is not ecgwatch writes the documented JSON; kcat reads the score back."""
    kcat = _kcat()
    samples = ", ".join(repr(float(v)) for v in streamed.x[0])
    line = f'{{"device_id": "dev-x", "seq": 7, "ts": {time.time()}, "samples": [{samples}]}}\n'
    subprocess.run(
        [kcat, "-P", "-b", kafka_bootstrap, "-t", streamed.topics.windows, "-k", "dev-x"],
        input=line.encode(),
        check=True,
        timeout=30,
    )
    deadline = time.monotonic() + 60
    found: list[str] = []
    while not found and time.monotonic() < deadline:
        cmd = [kcat, "-C", "-b", kafka_bootstrap, "-t", streamed.topics.scores, "-e", "-q"]
        out = subprocess.run(
            [*cmd, "-f", "%k\t%s\n"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
        found = [v for k, _, v in (ln.partition("\t") for ln in out.splitlines()) if k == "dev-x"]
        if not found:
            time.sleep(0.5)
    assert found, f"no score for dev-x\n{streamed.worker.log_tail()}"
    record = json.loads(found[0])
    assert (record["device_id"], record["seq"]) == ("dev-x", 7)
    assert record["score"] == pytest.approx(seed_model.offline_scores[0], abs=1e-5)
    assert record["anomaly"] == bool(seed_model.offline_scores[0] > seed_model.threshold)
