"""Artifact save/load: identical scores, and every way a stored artifact can be broken."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import detector.artifact as artifact_module
from detector import Artifact, ModelRegistry, RegistryError
from detector.errors import (
    ChecksumMismatchError,
    IncompatibleArtifactError,
    MissingArtifactFileError,
)
from tests.unit.detector.metadata import rewrite_metadata


@pytest.fixture
def artifact_copy(small_artifact: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(small_artifact, dst)
    return dst


def test_load_gives_identical_scores(small_artifact: Path, ecg_arrays: tuple) -> None:
    x, _ = ecg_arrays
    a = Artifact.load(small_artifact)
    b = Artifact.load(small_artifact)
    s1, s2 = a.score(x[:300]), b.score(x[:300])
    np.testing.assert_array_equal(s1, s2)
    assert s1.dtype == np.float32 and s1.shape == (300,)
    # score is side-effect free: the same call twice gives the same array
    np.testing.assert_array_equal(a.score(x[:300]), s1)


def test_saved_scores_equal_in_memory_scores(ecg_arrays: tuple, tmp_path: Path) -> None:
    from detector import AutoencoderDetector, FitOptions, fit_threshold

    x, y = ecg_arrays
    det = AutoencoderDetector(params={"encoder_widths": [16, 8]})
    det.fit(x[y == 1][:300], FitOptions(epochs=1, batch_size=128, seed=3))
    thr = fit_threshold("quantile", det.score(x[y == 1][300:600]), q=0.9)
    path = Artifact(det, thr, {"model_version": "v1"}).save(tmp_path / "a")
    loaded = Artifact.load(path)
    np.testing.assert_array_equal(loaded.score(x[:100]), det.score(x[:100]))
    assert loaded.threshold == thr
    assert loaded.detector.params == {"encoder_widths": [16, 8], "activation": "relu"}


def test_one_changed_byte_in_model_is_named(artifact_copy: Path) -> None:
    model = artifact_copy / "model.keras"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError) as info:
        Artifact.load(artifact_copy)
    assert "model.keras" in str(info.value) and "checksum mismatch" in str(info.value)


def test_truncated_metadata_is_named(artifact_copy: Path) -> None:
    meta = artifact_copy / "detector.json"
    meta.write_bytes(meta.read_bytes()[:50])
    with pytest.raises(ChecksumMismatchError, match="detector.json"):
        Artifact.load(artifact_copy)


def test_missing_files(artifact_copy: Path, tmp_path: Path) -> None:
    (artifact_copy / "model.keras").unlink()
    with pytest.raises(MissingArtifactFileError, match="model.keras"):
        Artifact.load(artifact_copy)
    with pytest.raises(MissingArtifactFileError, match="no such artifact folder"):
        Artifact.load(tmp_path / "nowhere")


def test_missing_checksum_file(artifact_copy: Path) -> None:
    (artifact_copy / "SHA256SUMS").unlink()
    with pytest.raises(MissingArtifactFileError, match="SHA256SUMS"):
        Artifact.load(artifact_copy)


def test_truncated_checksum_list(artifact_copy: Path) -> None:
    sums = artifact_copy / "SHA256SUMS"
    lines = [ln for ln in sums.read_text().splitlines() if "model.keras" not in ln]
    sums.write_text("\n".join(lines) + "\n")
    with pytest.raises(IncompatibleArtifactError, match="no checksum for model.keras"):
        Artifact.load(artifact_copy)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda m: m.update(schema_version=99), "schema_version 99"),
        (lambda m: m.pop("threshold"), "'threshold' is a required property"),
        (lambda m: m["normalisation"].update(kind="zscore"), "normalisation/kind"),
        (lambda m: m.update(window_length="140"), "window_length"),
    ],
)
def test_incompatible_metadata(artifact_copy: Path, mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    rewrite_metadata(artifact_copy, mutate)  # a consistent but incompatible artifact
    with pytest.raises(IncompatibleArtifactError) as info:
        Artifact.load(artifact_copy)
    assert "detector.json" in str(info.value) and fragment in str(info.value)


def test_save_is_atomic_and_immutable(
    small_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = Artifact.load(small_artifact)
    with pytest.raises(Exception, match="already exists"):
        art.save(small_artifact)
    # A save failing half-way (model and metadata already in the temporary folder) leaves
    # nothing behind, not even the temporary folder.
    written: list[str] = []

    def fail(folder: Path) -> None:
        written.extend(sorted(p.name for p in folder.iterdir()))
        raise OSError("disk full")

    monkeypatch.setattr(artifact_module, "write_checksums", fail)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="disk full"):
        art.save(out / "v")
    assert "model.keras" in written and "detector.json" in written  # the failure came late
    assert list(out.iterdir()) == []


def test_registry_latest(small_artifact: Path, tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(RegistryError, match="no published model"):
        reg.resolve()
    first = reg.publish(Artifact.load(small_artifact))
    second = reg.publish(Artifact.load(small_artifact))
    assert reg.versions() == sorted([first.name, second.name])
    assert reg.resolve() == second
    assert reg.load().version == second.name
    assert Artifact.load(tmp_path / "reg" / "latest").version == second.name
    with pytest.raises(RegistryError, match="not in the registry"):
        reg.resolve("nope")
