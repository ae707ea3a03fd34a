"""``ecgwatch train`` shows training epochs with progress_display, Keras' own output off."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

import training
from ecgwatch import cli_common
from ecgwatch.commands import train as train_cmd


@pytest.fixture
def no_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_common, "PLAIN_PROGRESS_INTERVAL_S", 0.0)


def test_quiet_shows_nothing() -> None:
    with train_cmd.epoch_progress(quiet=True) as on_epoch:
        assert on_epoch is None


def test_one_line_per_epoch_on_stdout(no_throttle: None, capsys: pytest.CaptureFixture) -> None:
    with train_cmd.epoch_progress(quiet=False) as on_epoch:
        assert on_epoch is not None
        for done in (1, 2, 3):
            on_epoch(done, 3, {"loss": 0.1})
    out = capsys.readouterr()
    lines = [line.split(",")[0] for line in out.out.splitlines()]
    assert lines == [
        "[train] 1/3 epochs (33%)",
        "[train] 2/3 epochs (67%)",
        "[train] 3/3 epochs (100%)",
    ]
    assert out.err == ""


def test_early_stopping_ends_complete(capsys: pytest.CaptureFixture) -> None:
    with train_cmd.epoch_progress(quiet=False) as on_epoch:
        assert on_epoch is not None
        for done in range(1, 8):
            on_epoch(done, 50, {"loss": 0.1})
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("[train] 7/7 epochs (100%)")


def test_run_passes_the_callback_and_no_keras_verbosity(
    monkeypatch: pytest.MonkeyPatch, no_throttle: None, capsys: pytest.CaptureFixture
) -> None:
    seen: dict[str, Any] = {}

    class Result:
        metrics: dict[str, Any] = {}
        seconds = 0.0
        path = "reg/v1"

    def fake_train(config: Any, **kwargs: Any) -> Result:
        seen.update(kwargs)
        kwargs["on_epoch"](1, 1, {"loss": 0.5})
        return Result()

    monkeypatch.setattr(training, "train", fake_train)
    monkeypatch.setattr(train_cmd, "format_metrics", lambda m: "metrics")
    args = argparse.Namespace(preset="seed", data=None, registry="reg", seed=None, quiet=False)
    assert train_cmd.run(args) == 0
    assert "verbose" not in seen  # train()'s default: Keras prints nothing
    assert "[train] 1/1 epochs (100%)" in capsys.readouterr().out
