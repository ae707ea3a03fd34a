"""The stitched test signal (training.continuous): beats laid end to end at their own lengths,
overlapping where a window ran into the next R wave."""

from __future__ import annotations

import numpy as np
import pytest

from training.continuous import PAD_LABEL, stitch
from training.errors import DataError


def _beat(r_at: int, tail_dip: bool, m: int = 140) -> np.ndarray:
    """A beat whose R (a downward spike) is at ``r_at``; optionally a second one at the end."""
    t = np.arange(m)
    beat = 0.3 * np.sin(2 * np.pi * t / m) - 4.0 * np.exp(-((t - r_at) ** 2) / 4.0)
    if tail_dip:
        beat -= 4.0 * np.exp(-((t - (m - 4)) ** 2) / 4.0)
    return beat


def test_beats_at_their_own_length_are_laid_end_to_end_and_come_back() -> None:
    beats = np.stack([_beat(3, False), _beat(3, False)])
    s = stitch(beats, np.array([1, 1]), seed=1, pad=1)
    assert s.labels.tolist() == [PAD_LABEL, 1, 1, PAD_LABEL]
    np.testing.assert_array_equal(s.starts[1:], np.cumsum(s.lengths)[:-1])
    np.testing.assert_array_equal(s.ends, s.starts + s.lengths)
    assert s.signal.size == s.starts[-1] + s.lengths[-1]
    # A beat resampled to 140 samples again is the beat (the spline passes through them).
    for i in (1, 2):
        piece = s.signal[s.starts[i] : s.starts[i] + s.lengths[i]]
        back = np.interp(np.arange(140) * s.lengths[i] / 140, np.arange(piece.size), piece)
        assert np.corrcoef(back, beats[i - 1])[0, 1] > 0.99


def test_a_window_that_runs_into_the_next_r_is_overlapped_so_there_is_one_r() -> None:
    beats = np.stack([_beat(3, True), _beat(3, False)])
    s = stitch(beats, np.array([3, 1]), seed=2, pad=1)
    first, second = 1, 2
    # The next beat starts so that its R lands on the first one's tail dip.
    tail_dip = s.starts[first] + round((140 - 4) * s.lengths[first] / 140)
    r_second = s.starts[second] + round(3 * s.lengths[second] / 140)
    assert abs(tail_dip - r_second) <= 1
    assert s.ends[first] == s.starts[second] < s.starts[first] + s.lengths[first]
    # One deep dip there, not two a few samples apart.
    around = s.signal[tail_dip - 15 : tail_dip + 15]
    deep = np.flatnonzero(around < -2.0)
    assert deep.size and deep.max() - deep.min() < 8


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(DataError, match="beats"):
        stitch(np.zeros((3, 140)), np.array([1, 1]))
    with pytest.raises(DataError, match="fs"):
        stitch(np.zeros((1, 140)), np.array([1]), fs=10.0)
