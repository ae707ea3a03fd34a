"""Registry pointer moves: promote verifies first, rollback returns to the previous version
(by the history of moves, else by age), and a broken version never becomes ``latest``."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector import Artifact, ArtifactError, ModelRegistry, RegistryError


@pytest.fixture
def registry(small_artifact: Path, tmp_path: Path) -> tuple[ModelRegistry, list[str]]:
    reg = ModelRegistry(tmp_path / "reg")
    versions = [reg.publish(Artifact.load(small_artifact)).name for _ in range(3)]
    return reg, versions


def test_promote_and_rollback_follow_the_history(registry: tuple) -> None:
    reg, (v1, _v2, v3) = registry
    assert reg.current() == v3
    reg.promote(v1)
    assert reg.current() == v1 and reg.resolve().name == v1
    assert reg.rollback() == v3  # back to what latest named before the promote
    assert reg.rollback() == v1  # and a rollback of the rollback goes back again
    assert [e["action"] for e in reg.history()] == [
        "publish",
        "publish",
        "publish",
        "promote",
        "rollback",
        "rollback",
    ]


def test_rollback_without_history_takes_the_next_older_version(registry: tuple) -> None:
    reg, (_v1, v2, _v3) = registry
    (reg.root / "latest.history").unlink()
    assert reg.rollback() == v2


def test_rollback_with_nothing_older_is_refused(small_artifact: Path, tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "one")
    with pytest.raises(RegistryError, match="no 'latest'"):
        reg.rollback()
    reg.publish(Artifact.load(small_artifact))
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        reg.rollback()


def test_a_tampered_version_is_not_promoted(registry: tuple) -> None:
    reg, (v1, _v2, v3) = registry
    model = reg.root / v1 / "model.keras"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="model.keras"):
        reg.promote(v1)
    assert reg.current() == v3
    with pytest.raises(RegistryError, match="not in the registry"):
        reg.promote("nope")


@pytest.mark.parametrize("name", ["latest", "latest.history", "..", "OUTSIDE", "v/../v"])
def test_promote_takes_only_a_version_folder_of_the_registry(
    registry: tuple, tmp_path: Path, name: str
) -> None:
    """``latest`` must never point at itself, at a file, or outside the registry."""
    reg, (v1, _v2, v3) = registry
    outside = tmp_path / "elsewhere"
    import shutil

    shutil.copytree(reg.root / v1, outside)  # a verified artifact, but not this registry's
    name = {"OUTSIDE": str(outside), "v/../v": f"{v1}/../{v1}"}.get(name, name)
    with pytest.raises(RegistryError, match=r"not in the registry.*one of its version folders"):
        reg.promote(name)
    assert reg.current() == v3
    assert reg.resolve().name == v3  # latest still resolves


def test_rollback_skips_a_version_that_no_longer_exists(registry: tuple) -> None:
    reg, (v1, v2, v3) = registry
    reg.promote(v1)
    reg.promote(v2)
    import shutil

    shutil.rmtree(reg.root / v1)
    assert reg.rollback() == v3  # v1 is gone: the move before it
