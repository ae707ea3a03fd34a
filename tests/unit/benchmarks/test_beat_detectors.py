"""The beat-detector comparison's matching (benchmarks.beat_detectors.score)."""

from __future__ import annotations

import numpy as np

from benchmarks.beat_detectors import score


def test_each_detection_matches_one_beat_within_the_window() -> None:
    fs = 250.0
    truth = np.array([100, 300, 500, 700])
    # 300 found twice, 500 found 50 samples off (beyond 0.15 s = 37.5), 700 missed, one spurious.
    found = np.array([102, 298, 305, 550, 900])
    matched, missed, extra = score(truth, found, fs)
    assert (matched, missed, extra) == (2, 2, 3)


def test_nothing_found_misses_everything() -> None:
    assert score(np.array([10, 20]), np.zeros(0, dtype=np.int64), 250.0) == (0, 2, 0)
