"""The shutdown watchdog ends the process through fail-stop when shutdown overruns."""

from __future__ import annotations

import threading

import pytest

from pipeline import lifecycle


def test_the_watchdog_fail_stops_after_its_limit_and_arms_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fired = threading.Event()
    reasons: list[str] = []

    def fake_fail_stop(why: str) -> None:
        reasons.append(why)
        fired.set()

    monkeypatch.setattr(lifecycle, "fail_stop", fake_fail_stop)
    monkeypatch.setattr(lifecycle, "_watchdog", None)
    lifecycle.arm_shutdown_watchdog(0.05)
    first = lifecycle._watchdog
    lifecycle.arm_shutdown_watchdog(60.0)  # a second signal must not extend the limit
    assert lifecycle._watchdog is first
    assert fired.wait(5), "the watchdog never fired"
    assert len(reasons) == 1 and "shutdown did not finish within" in reasons[0]


def test_log_level_is_checked() -> None:
    from pipeline.errors import PipelineConfigError
    from pipeline.settings import WorkerSettings

    with pytest.raises(PipelineConfigError, match="worker.log_level: 'loud'"):
        WorkerSettings(log_level="loud")
    assert WorkerSettings(log_level="debug").log_level == "debug"
