"""``ecgwatch ingest`` refuses to start with a one-line error naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgwatch.cli import main


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_an_empty_registry_names_the_command_that_fills_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", "--registry", str(tmp_path), "--bootstrap", "localhost:1"]) == 2
    err = _error(capsys)
    assert err.startswith("ecgwatch ingest: error: refusing to start")
    assert f"ecgwatch train --registry {tmp_path}" in err


def test_a_setting_out_of_range_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECGWATCH_INGEST__IDLE_S", "0")
    assert main(["ingest", "--registry", str(tmp_path)]) == 2
    assert "ingest.idle_s: 0.0 is not allowed; must be 1-86400 seconds" in _error(capsys)
    monkeypatch.delenv("ECGWATCH_INGEST__IDLE_S")
    assert main(["ingest", "--registry", str(tmp_path), "--metrics-port", "70000"]) == 2
    assert "ingest.metrics_port" in _error(capsys)
