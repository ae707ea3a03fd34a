"""pipeline.lifecycle.announce_first_batch: the start signal ``ecgwatch bench`` reads."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from ecgwatch.config import load_settings
from pipeline.lifecycle import announce_first_batch


def test_started_file_gets_the_epoch_time(tmp_path: Path) -> None:
    target = tmp_path / "w.started"
    before = time.time()
    announce_first_batch(str(target))
    assert before <= float(target.read_text()) <= time.time()
    assert [p.name for p in tmp_path.iterdir()] == ["w.started"]  # no temporary file left


def test_no_started_file_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    announce_first_batch("")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_started_file_only_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        announce_first_batch(str(tmp_path / "missing-dir" / "w.started"))
    assert "worker.started_file" in caplog.text


def test_started_file_is_a_worker_setting(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"worker:\n  started_file: {tmp_path / 's'}\n")
    assert load_settings(cfg, environ={}).started_file == str(tmp_path / "s")
    assert load_settings(None, environ={}).started_file == ""
