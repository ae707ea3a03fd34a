"""``ecgwatch replay --continuous``: stitched test beats as chunks, and their ground truth
(no broker: a fake producer)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pipeline.replay as window_replay
import pipeline.samples_replay as samples_replay
from ecgwatch.cli import main
from ecgwatch.cli_common import load_windows
from ecgwatch.commands.replay import (
    labelled_beats,
    stitch_devices,
    truth_records,
    write_truth,
)
from pipeline.samples import SAMPLES_CONTENT_TYPE, decode_chunk
from pipeline.settings import DEFAULT_TOPICS
from training.continuous import PAD_LABEL, stitch


class _Future:
    def get(self, timeout: float) -> None:
        pass


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, Any]] = []

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> _Future:
        self.sent.append((topic, key, value, headers))
        return _Future()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> _Producer:
    p = _Producer()
    monkeypatch.setattr(samples_replay, "_producer", lambda *_a: p)
    monkeypatch.setattr(window_replay, "_producer", lambda *_a: p)
    return p


@pytest.fixture(scope="module")
def test_beats(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    return labelled_beats(str(shared_data))


def test_labelled_beats_are_the_replayed_test_split_with_classes(
    shared_data: Path, test_beats: tuple[np.ndarray, np.ndarray]
) -> None:
    x, classes = test_beats
    x_windows, normal = load_windows(str(shared_data), "test")
    np.testing.assert_array_equal(x, x_windows)
    np.testing.assert_array_equal(classes == 1, normal == 1)
    assert set(np.unique(classes)) <= {1, 2, 3, 4, 5} and len(np.unique(classes)) > 2
    x_all, classes_all = labelled_beats(str(shared_data), "all")
    assert len(x_all) == len(classes_all) == 5000


def test_beats_go_round_robin_to_devices(test_beats: tuple[np.ndarray, np.ndarray]) -> None:
    x, classes = test_beats[0][:50], test_beats[1][:50]
    stitched = stitch_devices(x, classes, 4, fs=250.0, seed=3)
    assert list(stitched) == ["dev-0000", "dev-0001", "dev-0002", "dev-0003"]
    for d, s in enumerate(stitched.values()):
        real = s.labels != PAD_LABEL
        np.testing.assert_array_equal(s.rows[real], np.arange(d, 50, 4))
        np.testing.assert_array_equal(s.labels[real], classes[d::4])
        assert (s.rows[~real] == -1).all() and s.fs == 250.0
    again = stitch_devices(x, classes, 4, fs=250.0, seed=3)
    np.testing.assert_array_equal(again["dev-0002"].signal, stitched["dev-0002"].signal)
    own = stitch(x[1::4], classes[1::4], fs=250.0, seed=3 + 1)  # device d: seed + d
    np.testing.assert_array_equal(stitched["dev-0001"].signal, own.signal)
    assert not np.array_equal(stitched["dev-0000"].lengths[:12], own.lengths[:12])


def test_truth_has_one_record_per_real_beat_on_the_chunk_time_axis(
    test_beats: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, classes = test_beats[0][:30], test_beats[1][:30]
    stitched = stitch_devices(x, classes, 3, fs=360.0, seed=0)
    path = tmp_path / "truth.jsonl"
    assert write_truth(path, truth_records(stitched, 1000.0)) == 30
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["row"] for r in records) == list(range(30))
    for device, s in stitched.items():
        mine = [r for r in records if r["device_id"] == device]
        assert [r["beat_index"] for r in mine] == list(range(10))
        real = np.flatnonzero(s.labels != PAD_LABEL)
        for r, j in zip(mine, real, strict=True):
            assert set(r) == {
                "device_id",
                "beat_index",
                "row",
                "label",
                "anomalous",
                "start_ts",
                "end_ts",
                "peak_ts",
            }
            assert r["label"] == classes[r["row"]] and r["anomalous"] == (r["label"] != 1)
            assert r["start_ts"] == pytest.approx(1000.0 + s.starts[j] / 360.0)
            assert r["peak_ts"] == pytest.approx(1000.0 + s.peaks[j] / 360.0)
            assert r["start_ts"] < r["peak_ts"] < r["end_ts"]
        assert all(a["end_ts"] == pytest.approx(b["start_ts"]) for a, b in itertools.pairwise(mine))
        assert mine[0]["start_ts"] > 1000.0  # after the lead-in pads


def test_replay_continuous_streams_what_the_truth_describes(
    shared_data: Path,
    test_beats: tuple[np.ndarray, np.ndarray],
    producer: _Producer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    truth = tmp_path / "truth.jsonl"
    argv = ["replay", "--continuous", "--data", str(shared_data), "--bootstrap", "unused:1"]
    assert main([*argv, "--devices", "7", "--truth", str(truth), "--seed", "5", "--binary"]) == 0
    out = capsys.readouterr().out
    assert "chunks" in out and DEFAULT_TOPICS.samples in out and str(truth) in out
    assert {t for t, *_ in producer.sent} == {DEFAULT_TOPICS.samples}
    assert all(headers == [("content-type", SAMPLES_CONTENT_TYPE)] for *_, headers in producer.sent)
    chunks = [decode_chunk(value, headers) for _, _, value, headers in producer.sent]
    keys = [key for _, key, *_ in producer.sent]
    assert keys == [c.device_id.encode() for c in chunks]
    expected = stitch_devices(*test_beats, 7, fs=250.0, seed=5)
    assert sorted({c.device_id for c in chunks}) == list(expected)
    ts0 = min(c.ts for c in chunks)
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    assert len(records) == len(test_beats[0])
    for device, s in expected.items():
        mine = [c for c in chunks if c.device_id == device]
        assert [c.seq for c in mine] == list(range(len(mine)))
        # Staggered (devices are not synchronised): a first chunk may be short.
        assert {c.samples.size for c in mine[1:-1]} == {62} and 0 < mine[0].samples.size <= 62
        signal = np.concatenate([c.samples for c in mine])
        np.testing.assert_array_equal(signal, s.signal)  # float32 both ways: exact
        assert mine[0].ts == ts0
        # A truth beat starts where the stitched beat does, on the chunks' time axis.
        beat = next(r for r in records if r["device_id"] == device)
        first_real = int(np.flatnonzero(s.labels != PAD_LABEL)[0])
        assert round((beat["start_ts"] - ts0) * 250.0) == s.starts[first_real]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--continuous", "--rate", "100"], "--rate"),
        (["--continuous", "--repeat", "2"], "--repeat"),
        (["--continuous", "--fs", "5"], "--fs"),
        (["--continuous", "--chunk-s", "0"], "--chunk-s"),
        (["--continuous", "--devices", "0"], "--devices"),
        (["--realtime"], "--realtime"),
    ],
)
def test_bad_combinations_are_one_line_errors(
    shared_data: Path,
    producer: _Producer,
    extra: list[str],
    words: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["replay", "--data", str(shared_data), "--bootstrap", "unused:1", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err
    assert producer.sent == []


def test_window_replay_is_unchanged(
    shared_data: Path, producer: _Producer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--data", str(shared_data), "--bootstrap", "unused:1"]) == 0
    assert len(producer.sent) == 1000
    assert {t for t, *_ in producer.sent} == {DEFAULT_TOPICS.windows}
    assert len({key for _, key, *_ in producer.sent}) == 10  # 10 devices by default
    assert all(headers is None for *_, headers in producer.sent)
    assert "sent 1000 windows" in capsys.readouterr().out
