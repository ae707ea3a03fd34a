"""Progress of long work: replay reports counts, the command line decides how to show them."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

import pipeline.replay as replay_module
from ecgwatch import cli_common
from ecgwatch.cli_common import progress_display


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 0.1, 0.2, 6.0, 6.1, 7.0])
    monkeypatch.setattr(cli_common.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    with progress_display("replay", "windows", out) as update:
        update(1, 10)  # t=0.1: the first line
        update(2, 10)  # t=0.2: too soon, skipped
        update(5, 10)  # t=6.0: 5 s later, shown
        update(6, 10)  # t=6.1: skipped
        update(10, 10)  # t=7.0: complete, always shown
    assert out.getvalue().splitlines() == [
        "[replay] 1/10 windows (10%), 10/s",
        "[replay] 5/10 windows (50%), 1.2 s each",
        "[replay] 10/10 windows (100%), 1.4/s",
    ]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_slow_work_reads_as_seconds_each(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 90.0, 2400.0])
    monkeypatch.setattr(cli_common.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    with progress_display("compare", "runs", out) as update:
        update(1, 20)  # one fit in 90 s
        update(20, 20)  # 20 in 2400 s
    assert out.getvalue().splitlines() == [
        "[compare] 1/20 runs (5%), 90 s each",
        "[compare] 20/20 runs (100%), 120 s each",
    ]


def test_a_bar_on_a_terminal() -> None:
    out = _Tty()
    with progress_display("replay", "windows", out) as update:
        update(10, 10)
    text = out.getvalue()
    assert "[replay]" in text and "10/10" in text and "windows" in text


class _Future:
    def get(self, timeout: float) -> None:
        pass


class _Producer:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, *_a: Any, **_k: Any) -> _Future:
        self.sent += 1
        return _Future()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_replay_reports_counts_and_draws_nothing_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    producer = _Producer()
    monkeypatch.setattr(replay_module, "_producer", lambda *_a: producer)
    calls: list[tuple[int, int]] = []
    stats = replay_module.replay(
        np.zeros((50, 140)), bootstrap="unused:1", progress=lambda d, t: calls.append((d, t))
    )
    assert stats.sent == producer.sent == 50
    assert calls[0] == (1, 50) and calls[-1] == (50, 50)  # first at once, last always
    assert len(calls) < 50  # throttled (PROGRESS_INTERVAL_S)
    replay_module.replay(np.zeros((5, 140)), bootstrap="unused:1")  # no progress: silent
    assert capsys.readouterr() == ("", "")
