"""``ecgwatch promote`` / ``rollback`` move ``latest`` (verified) and say so; bad input is one
clear error line and leaves ``latest`` where it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector import Artifact, ModelRegistry
from ecgwatch.cli import main


def test_promote_then_rollback(
    small_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    v1, v2 = (reg.publish(Artifact.load(small_artifact)).name for _ in range(2))
    assert main(["promote", v1, "--registry", str(reg.root)]) == 0
    assert f"latest {v2} -> {v1}" in capsys.readouterr().out
    assert reg.current() == v1
    assert main(["rollback", "--registry", str(reg.root)]) == 0
    assert f"latest {v1} -> {v2}" in capsys.readouterr().out
    assert reg.current() == v2


def test_promote_of_an_unknown_version_is_a_clear_error(
    small_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    v1 = reg.publish(Artifact.load(small_artifact)).name
    assert main(["promote", "nope", "--registry", str(reg.root)]) != 0
    err = capsys.readouterr().err
    assert "nope" in err and "not in the registry" in err and "Traceback" not in err
    assert main(["rollback", "--registry", str(reg.root)]) != 0
    assert "nothing to roll back to" in capsys.readouterr().err
    assert reg.current() == v1
