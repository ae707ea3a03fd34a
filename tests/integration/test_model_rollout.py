"""Hot roll-out on the real broker, both engines, two workers in one group: while 20,000
windows stream at 1,000/s, publishing a new version switches both workers within 10 s (the
default ``worker.model_poll_s``), no window is lost or scored twice, every score names the
version (and threshold) that scored it, and a tampered artifact put in place of ``latest``
mid-stream is refused while scoring goes on with the good version."""

from __future__ import annotations

import shutil
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from detector import Artifact, ModelRegistry, Threshold
from pipeline.replay import device_of, replay
from tests.integration.conftest import SeedModel
from tests.integration.stream import WorkerPool, every_window_scored, new_topics, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_WINDOWS = 20_000
RATE = 1_000.0
DEVICES = 100
#: The target: every worker serves the new version this soon after it is published.
SWITCH_WITHIN_S = 10.0


def _publish_new(registry: ModelRegistry, seed: SeedModel) -> tuple[str, float]:
    """A second version (same weights, threshold x1.1, so records show which scored them)."""
    art = Artifact.load(seed.artifact)
    t = art.threshold
    art.threshold = Threshold(t.value * 1.1, t.policy, dict(t.params))
    return registry.publish(art).name, art.threshold.value


def _put_tampered(registry: ModelRegistry, good: str) -> str:
    """A copy of ``good`` with one byte of its model changed, made ``latest`` without checks
    (as a broken sync or a hand-made copy would)."""
    name = f"{good}-tampered"
    shutil.copytree(registry.root / good, registry.root / name)
    model = registry.root / name / "model.keras"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    registry._point_latest(name, "test-tamper")
    return name


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_publish_mid_stream_switches_every_worker_without_loss_or_double_scoring(
    engine: str, kafka_bootstrap: str, seed_model: SeedModel, ecg_arrays: tuple, tmp_path: Path
) -> None:
    reg_dir = tmp_path / "registry"
    shutil.copytree(seed_model.registry, reg_dir, symlinks=True)
    registry = ModelRegistry(reg_dir)
    v1 = registry.current()
    assert v1 == seed_model.version
    x = np.tile(np.asarray(ecg_arrays[0], dtype=np.float32), (N_WINDOWS // 1000 + 1, 1))[:N_WINDOWS]
    topics = new_topics(kafka_bootstrap, f"it.rollout.{engine}", partitions=4)
    pool = WorkerPool(reg_dir, kafka_bootstrap, tmp_path / "workers")
    env = {"ECGWATCH_WORKER__ENGINE": engine}
    try:
        first = pool.start(topics, env=env)
        second = pool.start(topics, env=env, group_id=first.group_id)
        wait_until(
            lambda: (
                first.metric("ecg_consumer_assigned_partitions") == 2
                and second.metric("ecg_consumer_assigned_partitions") == 2
            ),
            60,
            "the two workers to share the 4 partitions",
            first,
            second,
        )
        streaming = threading.Thread(
            target=replay,
            args=(x,),
            kwargs=dict(
                bootstrap=kafka_bootstrap,
                topic=topics.windows,
                devices=DEVICES,
                rate=RATE,
                progress=None,
            ),
            daemon=True,
        )
        streaming.start()
        time.sleep(4.0)
        v2, v2_threshold = _publish_new(registry, seed_model)
        published_at = time.time()
        time.sleep(SWITCH_WITHIN_S + 2)
        tampered = _put_tampered(registry, v2)
        streaming.join(timeout=120)
        assert not streaming.is_alive()
        want = {device_of(i, DEVICES) for i in range(N_WINDOWS)}
        records = every_window_scored(
            kafka_bootstrap, topics.scores, want, lambda: first.log_tail() + second.log_tail()
        )
        wait_until(
            lambda: (
                first.metric("ecg_model_refused") == 1 and second.metric("ecg_model_refused") == 1
            ),
            30,
            "both workers to refuse the tampered version",
            first,
            second,
        )
        for w in (first, second):
            w.assert_running()
            assert w.metric("ecg_model_info", version=v2, kind="dense") == 1
            assert w.metric("ecg_model_reloads_total", outcome="switched") == 1
            assert w.metric("ecg_model_reloads_total", outcome="refused") == 1
        logs = [w.log_path.read_text() for w in (first, second) if w.log_path]
    finally:
        pool.close()

    assert len(records) == N_WINDOWS, "a window was scored twice"
    thresholds = {v1: pytest.approx(seed_model.threshold), v2: pytest.approx(v2_threshold)}
    per_device: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in records:
        assert r["model_version"] in (v1, v2), r["model_version"]
        assert r["threshold"] == thresholds[r["model_version"]]
        assert r["anomaly"] == (r["score"] > r["threshold"])
        per_device[r["device_id"]].append((r["seq"], r["model_version"]))
    for device, items in per_device.items():  # one switch per device, never back
        versions = [v for _, v in sorted(items)]
        assert versions == sorted(versions, key=[v1, v2].index), device
    v1_times = [r["scored_at"] for r in records if r["model_version"] == v1]
    v2_times = [r["scored_at"] for r in records if r["model_version"] == v2]
    assert v2_times, "the new version never scored"
    assert max(v1_times) - published_at <= SWITCH_WITHIN_S, (
        f"the old version still scored {max(v1_times) - published_at:.1f} s after the publish"
    )
    assert all(f"refusing version {tampered}" in log and "model.keras" in log for log in logs)
    assert all(f"model switched: {v1} -> {v2}" in log for log in logs)


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_a_shadow_model_scores_every_window_beside_the_served_one(
    engine: str, kafka_bootstrap: str, seed_model: SeedModel, shared_data: Path, tmp_path: Path
) -> None:
    """``worker.shadow_model``: its score and decision in fields of their own, agreement
    metrics on ``/metrics``, no alert of its own."""
    from ecgwatch.cli_common import load_windows
    from tests.integration.stream import TopicReader

    reg_dir = tmp_path / "registry"
    shutil.copytree(seed_model.registry, reg_dir, symlinks=True)
    registry = ModelRegistry(reg_dir)
    candidate, candidate_threshold = _publish_new(registry, seed_model)
    registry.promote(seed_model.version)  # serve the seed; the candidate only shadows
    x, _ = load_windows(str(shared_data))
    topics = new_topics(kafka_bootstrap, f"it.shadow.{engine}", partitions=2)
    pool = WorkerPool(reg_dir, kafka_bootstrap, tmp_path / "workers")
    env = {"ECGWATCH_WORKER__ENGINE": engine, "ECGWATCH_WORKER__SHADOW_MODEL": candidate}
    try:
        worker = pool.start(topics, env=env)
        replay(x, bootstrap=kafka_bootstrap, topic=topics.windows, devices=10, progress=None)
        want = {device_of(i, 10) for i in range(len(x))}
        records = every_window_scored(kafka_bootstrap, topics.scores, want, worker.log_tail)
        agree = worker.metric("ecg_shadow_windows_total", agreement="agree")
        disagree = worker.metric("ecg_shadow_windows_total", agreement="disagree")
        assert worker.metric("ecg_shadow_model_info", version=candidate) == 1
        assert worker.metric("ecg_shadow_scoring_duration_seconds_count") > 0
        with TopicReader(kafka_bootstrap, topics.alerts) as reader:
            alerts = reader.drain()
    finally:
        pool.close()
    assert all(r["model_version"] == seed_model.version for r in records)
    assert all(r["shadow_model_version"] == candidate for r in records)
    for r in records:
        assert r["shadow_anomaly"] == (r["shadow_score"] > candidate_threshold)
        assert r["shadow_score"] == pytest.approx(r["score"], rel=1e-5)  # same weights
    differ = sum(r["anomaly"] != r["shadow_anomaly"] for r in records)
    assert differ > 0, "the candidate's higher threshold should change some decisions"
    assert (agree, disagree) == (len(records) - differ, differ)
    assert alerts and all(a["model_version"] == seed_model.version for a in alerts)
