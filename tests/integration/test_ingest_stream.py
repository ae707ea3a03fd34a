"""The beat-extraction stage on the real broker: ``ecgwatch replay --continuous`` → ``ecgwatch
ingest`` → ``ecgwatch worker``, checked against the replay's ground truth.

* 20 devices carrying the 1,000 test beats: every beat once (found ≥ 99.5 %, spurious ≤ 0.5 %),
  streamed accuracy through ingest + worker, bad chunks dead-lettered while the stage goes on.
* ``kill -9`` of the stage half-way: after the restart no beat is lost and none is repeated.
* 100 devices in real time, 0.25 s chunks: latency from a beat's last sample to its score.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kafka import KafkaProducer

from pipeline.samples import SAMPLES_GAP, encode_chunk_json
from pipeline.settings import TopicNames
from tests.integration.stream import (
    REPO,
    IngestProcess,
    TopicReader,
    WorkerPool,
    ecgwatch_env,
    new_topics,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.serial]

#: A window is the true beat whose end lies nearest its ``ts``, within this fraction of the
#: beat's length (a quarter: the window then overlaps the beat by well over half of it; the
#: neighbours' ends are a whole beat away).
MATCH_FRACTION = 0.25


def replay_continuous(
    bootstrap: str,
    topics: TopicNames,
    data: Path,
    truth: Path,
    *args: str,
) -> tuple[list[dict[str, Any]], int]:
    """Run ``ecgwatch replay --continuous``; return its ground truth (one record per beat)
    and how many chunks it sent."""
    cmd = [
        sys.executable,
        "-m",
        "ecgwatch",
        "replay",
        "--continuous",
        "--bootstrap",
        bootstrap,
        "--data",
        str(data),
        "--topic",
        topics.samples,
        "--truth",
        str(truth),
        *args,
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=ecgwatch_env(), capture_output=True, timeout=300)
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode == 0, out[-3000:]
    sent = re.search(r"sent (\d+) chunks", out)
    assert sent, out[-3000:]
    return [json.loads(line) for line in truth.read_text().splitlines()], int(sent.group(1))


def match(truth: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Pair windows (or scores) with true beats by end time, per device."""
    by_dev: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_dev.setdefault(r["device_id"], []).append(r)
    found = spurious = 0
    pairs = []
    for dev in sorted({t["device_id"] for t in truth}):
        beats = [t for t in truth if t["device_id"] == dev]
        ends = np.array([t["end_ts"] for t in beats])
        within = MATCH_FRACTION * (ends - np.array([t["start_ts"] for t in beats]))
        got = by_dev.get(dev, [])
        hits = np.zeros(len(beats), dtype=int)
        for r in got:
            j = int(np.argmin(np.abs(ends - r["ts"])))
            if abs(ends[j] - r["ts"]) <= within[j]:
                hits[j] += 1
                pairs.append((beats[j], r))
        found += int((hits >= 1).sum())
        # Windows of the lead-in/lead-out pads match no truth beat: only beyond the real beats
        # does an unmatched window not count as spurious.
        inside = [r for r in got if ends[0] - within[0] <= r["ts"] <= ends[-1] + within[-1]]
        spurious += len(inside) - int(hits.sum()) + int((hits - 1).clip(0).sum())
    return {"found": found / len(truth), "spurious": spurious / len(truth), "pairs": pairs}


@pytest.fixture(scope="module")
def stream20(
    kafka_bootstrap: str,
    continuous_model: Path,
    shared_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """20 devices' stitched test beats through the stage and a worker, plus bad chunks."""
    root = tmp_path_factory.mktemp("ingest20")
    topics = new_topics(kafka_bootstrap, "it-ingest", partitions=4, samples=True)
    pool = WorkerPool(continuous_model, kafka_bootstrap, root)
    stage = IngestProcess(continuous_model, kafka_bootstrap, topics, root / "ingest")
    try:
        worker = pool.start(topics)
        stage.start().wait_ready()
        truth, sent = replay_continuous(
            kafka_bootstrap, topics, shared_data, root / "truth.jsonl", "--devices", "20"
        )
        _send_bad_chunks(kafka_bootstrap, topics)
        with (
            TopicReader(kafka_bootstrap, topics.windows) as windows,
            TopicReader(kafka_bootstrap, topics.scores) as scores,
            TopicReader(kafka_bootstrap, topics.samples_dlq) as dead,
        ):
            chunks = sent + 4  # and the bad device's usable ones (one is garbage)

            def drained(_: object) -> bool:
                return stage.metric("ecg_ingest_chunks_total") >= chunks

            windows.until(drained, 120, "the stage used every chunk", stage.log_tail)
            time.sleep(2.0)  # the last windows' produce
            beats = stage.metric("ecg_ingest_beats_total")
            windows.until(lambda r: len(r) >= beats, 60, "every window in the topic")
            scores.until(lambda r: len(r) >= beats, 120, "every window scored", worker.log_tail)
            dead.until(lambda r: len(r) >= 2, 60, "the bad chunks dead-lettered")
            stage.assert_running()
            return {
                "truth": truth,
                "windows": [r for r in windows.drain() if r["device_id"] != "bad-dev"],
                "scores": [r for r in scores.drain() if r["device_id"] != "bad-dev"],
                "dead": dead.drain(),
                "stage": stage,
                "metrics": stage.metrics(),
            }
    finally:
        stage.stop()
        pool.close()


def _send_bad_chunks(bootstrap: str, topics: TopicNames) -> None:
    """A device whose stream has garbage and a gap among good chunks."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    t0 = time.time()
    good = [encode_chunk_json("bad-dev", k, t0 + k, 250.0, np.zeros(250)) for k in range(5)]
    for value in (good[0], b"{not json", good[1], good[3], good[4]):  # seq 2 is missing
        producer.send(topics.samples, key=b"bad-dev", value=value)
    producer.flush()
    producer.close()


def test_every_beat_of_20_devices_once(stream20: dict[str, Any]) -> None:
    m = match(stream20["truth"], stream20["windows"])
    assert m["found"] >= 0.995, m["found"]
    assert m["spurious"] <= 0.005, m["spurious"]
    seen = [(r["device_id"], r["seq"]) for r in stream20["windows"]]
    assert len(seen) == len(set(seen)), "a (device, seq) was produced twice"
    for dev in {d for d, _ in seen}:
        seqs = sorted(q for d, q in seen if d == dev)
        assert seqs == list(range(len(seqs)))


#: Streamed accuracy the stage + worker must keep (the ``continuous`` preset, seed 42: 0.9800
#: measured, 978 of the 998 beats found; the issue's target is 0.98: docs/continuous.md).
ACCURACY_FLOOR = 0.975


def test_streamed_accuracy_through_ingest_and_worker(stream20: dict[str, Any]) -> None:
    """Every real beat's score against its class (the ``continuous`` preset)."""
    pairs = match(stream20["truth"], stream20["scores"])["pairs"]
    assert len(pairs) >= 0.995 * len(stream20["truth"])
    right = [rec["anomaly"] == beat["anomalous"] for beat, rec in pairs]
    accuracy = float(np.mean(right))
    normal = [rec["anomaly"] for beat, rec in pairs if not beat["anomalous"]]
    print(f"streamed accuracy {accuracy:.4f}, false alarms on normal beats {np.mean(normal):.4f}")
    assert accuracy >= ACCURACY_FLOOR


def test_bad_chunks_are_dead_lettered_with_a_reason_and_the_stage_goes_on(
    stream20: dict[str, Any],
) -> None:
    reasons = sorted(r["reason"] for r in stream20["dead"])
    assert reasons == ["invalid_json", SAMPLES_GAP]
    gap = next(r for r in stream20["dead"] if r["reason"] == SAMPLES_GAP)
    assert "2..2" in gap["detail"] and "bad-dev" in gap["detail"]
    metrics = stream20["metrics"]
    assert metrics[("ecg_ingest_rejected_total", (("reason", "invalid_json"),))] == 1
    assert metrics[("ecg_ingest_rejected_total", (("reason", SAMPLES_GAP),))] == 1


def _signals(data: Path, devices: int) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """The replay's stitched signals of the test beats and their ground truth from now."""
    from ecgwatch.commands.replay import labelled_beats, stitch_devices, truth_records

    x, classes = labelled_beats(str(data))
    stitched = stitch_devices(x, classes, devices, fs=250.0, seed=0)
    t0 = time.time()
    return stitched, list(truth_records(stitched, t0)), t0


def _send(producer: KafkaProducer, topic: str, stitched: dict[str, Any], t0: float, chunks) -> None:
    from pipeline.samples import samples_message

    for c in chunks:
        s = stitched[c.device_id]
        value, headers = samples_message(
            c.device_id, c.seq, t0 + c.start / s.fs, s.fs, s.signal[c.start : c.stop]
        )
        producer.send(topic, key=c.device_id.encode(), value=value, headers=headers or None)
    producer.flush()


def _settled(windows: TopicReader, stage: IngestProcess, chunks: int) -> list[dict[str, Any]]:
    """The windows topic once the stage used ``chunks`` chunks and 2 s passed with no new
    window (a restarted stage counts the chunks it consumes again too)."""
    deadline = time.monotonic() + 120
    quiet_since = time.monotonic()
    while stage.metric("ecg_ingest_chunks_total") < chunks or time.monotonic() - quiet_since < 2:
        assert time.monotonic() < deadline, stage.log_tail()
        stage.assert_running()
        if windows.poll():
            quiet_since = time.monotonic()
    return windows.drain()


def test_kill9_of_the_stage_half_way_loses_and_repeats_no_beat(
    kafka_bootstrap: str, continuous_model: Path, shared_data: Path, tmp_path: Path
) -> None:
    from pipeline.samples_replay import chunk_length, plan_chunks

    topics = new_topics(kafka_bootstrap, "it-ingest-kill", partitions=4, samples=True)
    stitched, truth, t0 = _signals(shared_data, 20)
    plan = plan_chunks(
        {d: s.signal.size for d, s in stitched.items()}, 250.0, chunk_length(0.25, 250.0)
    )
    half = len(plan) // 2
    stage = IngestProcess(continuous_model, kafka_bootstrap, topics, tmp_path / "ingest")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        stage.start().wait_ready()
        _send(producer, topics.samples, stitched, t0, plan[:half])
        deadline = time.monotonic() + 60
        while stage.metric("ecg_ingest_chunks_total") < half:
            assert time.monotonic() < deadline, stage.log_tail()
            time.sleep(0.05)
        time.sleep(0.5)  # inside the commit interval: some chunks are used but not committed
        stage.kill9()
        _send(producer, topics.samples, stitched, t0, plan[half:])
        stage.start().wait_ready()
        with TopicReader(kafka_bootstrap, topics.windows) as windows:
            records = _settled(windows, stage, len(plan) - half)
        # The restarted stage re-extracted the chunks it was not allowed to commit past,
        # recognised the beats it had produced, and went on with the next seq.
        assert stage.metric("ecg_ingest_beats_skipped_total") > 0, stage.log_tail()
        assert "devices' newest windows read" in stage.log_tail()
    finally:
        producer.close()
        stage.stop()
    # Stopped cleanly, the stage left each device's newest (seq, ts) in the state topic.
    with TopicReader(kafka_bootstrap, topics.ingest_state) as state_topic:
        state = {r["device_id"]: r for r in state_topic.drain()}
    seen = [(r["device_id"], r["seq"]) for r in records]
    for dev in stitched:
        newest = max(q for d, q in seen if d == dev)
        assert state[dev]["seq"] == newest, (dev, state.get(dev), newest)
    assert len(seen) == len(set(seen)), "a (device, seq) was produced twice"
    m = match(truth, records)
    assert m["found"] >= 0.995, m["found"]
    assert m["spurious"] <= 0.005, m["spurious"]
    for dev in stitched:
        seqs = sorted(q for d, q in seen if d == dev)
        assert seqs == list(range(len(seqs)))


def test_latency_from_a_beats_last_sample_to_its_score_at_100_devices(
    kafka_bootstrap: str, continuous_model: Path, shared_data: Path, tmp_path: Path
) -> None:
    """Real time, 0.25 s chunks: p99 of (score's ``scored_at`` - window ``ts``) <= 1 s. The
    window's ``ts`` is the beat's end on the device's clock, which the real-time replay keeps
    on the wall clock."""
    topics = new_topics(kafka_bootstrap, "it-ingest-lat", partitions=8, samples=True)
    pool = WorkerPool(continuous_model, kafka_bootstrap, tmp_path)
    stage = IngestProcess(continuous_model, kafka_bootstrap, topics, tmp_path / "ingest")
    try:
        worker = pool.start(topics)
        stage.start().wait_ready()
        truth, sent = replay_continuous(
            kafka_bootstrap,
            topics,
            shared_data,
            tmp_path / "truth.jsonl",
            "--devices",
            "100",
            "--realtime",
            "--chunk-s",
            "0.25",
        )
        with TopicReader(kafka_bootstrap, topics.scores) as scores:
            _settled(scores, stage, sent)
            records = scores.drain()
        worker.assert_running()
    finally:
        stage.stop()
        pool.close()
    assert match(truth, records)["found"] >= 0.995
    latency = np.array([r["scored_at"] - r["ts"] for r in records])
    p50, p99 = np.percentile(latency, [50, 99])
    print(f"ingest+worker latency at 100 devices: p50 {p50:.3f} s, p99 {p99:.3f} s")
    ts = np.array([r["ts"] for r in records])
    fifths = np.array_split(np.argsort(ts), 5)
    by_fifth = [round(float(np.percentile(latency[f], 99)), 3) for f in fifths]
    print("p99 by fifth of the stream:", by_fifth)
    assert latency.min() > 0, "a window's ts is after its score: the beat end time is wrong"
    assert p99 <= 1.0, (p50, p99)
