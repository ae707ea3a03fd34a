"""``ecgwatch train`` without ``--preset``: ``records`` for WFDB records (beats cut by the
stream stage's code), ``recommended`` for every other source; an explicit preset wins."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

import training
from ecgwatch.commands import train as train_cmd


def _run(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> str:
    used: list[str] = []

    class Result:
        metrics: dict[str, Any] = {}
        seconds = 0.0
        path = "reg/v1"

    monkeypatch.setattr(training, "train", lambda config, **_: used.append(config.name) or Result())
    monkeypatch.setattr(train_cmd, "format_metrics", lambda m: "metrics")
    args = argparse.Namespace(registry="reg", seed=None, quiet=True, **kw)
    assert train_cmd.run(args) == 0
    return used[0]


def test_records_train_the_records_preset_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "rec1.hea").write_text("rec1 1 250 2500\n")
    assert _run(monkeypatch, preset=None, data=str(tmp_path)) == "records"
    assert "[train] preset: records" in capsys.readouterr().out
    assert _run(monkeypatch, preset=None, data=str(tmp_path / "rec1.hea")) == "records"


def test_other_sources_train_recommended_and_an_explicit_preset_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    assert _run(monkeypatch, preset=None, data=None) == "recommended"
    assert _run(monkeypatch, preset=None, data=str(shared_data)) == "recommended"
    (tmp_path / "rec1.hea").write_text("rec1 1 250 2500\n")
    assert _run(monkeypatch, preset="recommended", data=str(tmp_path)) == "recommended"
    assert _run(monkeypatch, preset="seed", data=None) == "seed"
