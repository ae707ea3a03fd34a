"""A dense artifact carries its NumPy pass (``forward.npz``, checked against Keras at save):
loading it and scoring on the NumPy backend imports neither Keras nor TensorFlow, scores as
Keras does, and the file is trusted only with its checksum."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector import Artifact
from detector.artifact import FORWARD_FILE, write_checksums
from detector.errors import ChecksumMismatchError, IncompatibleArtifactError
from detector.fastpath import chain_bytes, load_chain

_PROBE = """
import json, sys
import numpy as np
from detector import Artifact
a = Artifact.load(sys.argv[1])
backend = a.detector.use_backend("auto")
x = np.load(sys.argv[2])
print(json.dumps({
    "backend": backend,
    "imported": sorted(m for m in ("keras", "tensorflow") if m in sys.modules),
    "scores": a.score(x).tolist(),
}))
"""


def _probe(artifact: Path, x: np.ndarray, tmp_path: Path) -> dict:
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(artifact), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_dense_artifact_scores_without_keras_as_keras_does(
    small_artifact: Path, ecg_arrays: tuple, tmp_path: Path
) -> None:
    x, _ = ecg_arrays
    assert FORWARD_FILE in (small_artifact / "SHA256SUMS").read_text()
    got = _probe(small_artifact, x[:200], tmp_path)
    assert got["backend"] == "numpy" and got["imported"] == []
    keras_scores = Artifact.load(small_artifact).score(x[:200])  # the Keras backend
    np.testing.assert_allclose(got["scores"], keras_scores, rtol=0, atol=1e-5)


def test_the_keras_model_still_loads_when_asked_for(small_artifact: Path) -> None:
    a = Artifact.load(small_artifact)
    assert a.detector.use_backend("keras") == "keras"
    assert a.detector.model is not None and a.detector.model.input_shape[-1] == 140


def test_an_unlisted_forward_file_is_not_trusted(
    small_artifact: Path, ecg_arrays: tuple, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_artifact, copy)
    chain = load_chain(copy / FORWARD_FILE, 140)
    zeroed = [(np.zeros_like(k), np.zeros_like(b), a) for k, b, a in chain]
    (copy / FORWARD_FILE).write_bytes(chain_bytes(zeroed))
    sums = copy / "SHA256SUMS"
    sums.write_text(
        "".join(ln for ln in sums.read_text().splitlines(True) if FORWARD_FILE not in ln)
    )
    x, _ = ecg_arrays
    got = _probe(copy, x[:50], tmp_path)
    assert "keras" in got["imported"]  # its own check against Keras, not the planted file
    np.testing.assert_allclose(
        got["scores"], Artifact.load(small_artifact).score(x[:50]), atol=1e-5
    )


def test_a_changed_forward_file_fails_its_checksum(small_artifact: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_artifact, copy)
    data = bytearray((copy / FORWARD_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / FORWARD_FILE).write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match=FORWARD_FILE):
        Artifact.load(copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c[:-1], "maps 140 samples to 32, not back to 140"),
        (lambda c: [(c[0][0][:100], c[0][1], c[0][2]), *c[1:]], r"layer 0: no kernel of shape"),
        (lambda c: [(c[0][0], c[0][1][:3], c[0][2]), *c[1:]], r"layer 0: bias shape \(3,\)"),
        (lambda c: [(c[0][0], c[0][1], "gelu"), *c[1:]], "layer 0: activation 'gelu'"),
        (lambda c: [], "no layers"),
    ],
)
def test_a_checksummed_but_inconsistent_forward_file_is_named(
    small_artifact: Path, tmp_path: Path, change, message: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(small_artifact, copy)
    (copy / FORWARD_FILE).write_bytes(chain_bytes(change(load_chain(copy / FORWARD_FILE, 140))))
    write_checksums(copy)
    with pytest.raises(IncompatibleArtifactError, match=message) as info:
        Artifact.load(copy)
    assert FORWARD_FILE in str(info.value)


def test_an_artifact_without_the_forward_file_loads_with_keras_as_before(
    small_artifact: Path, ecg_arrays: tuple, tmp_path: Path
) -> None:
    copy = tmp_path / "old"
    shutil.copytree(small_artifact, copy)
    (copy / FORWARD_FILE).unlink()
    write_checksums(copy)
    a = Artifact.load(copy)
    assert a.detector.model is not None  # deserialised at load: a bad file fails there
    assert a.detector.use_backend("auto") == "numpy"  # checked against Keras now
    x, _ = ecg_arrays
    np.testing.assert_allclose(
        a.score(x[:50]), Artifact.load(small_artifact).score(x[:50]), atol=1e-5
    )


def test_models_with_no_numpy_pass_save_no_forward_file(tmp_path: Path) -> None:
    from detector import AutoencoderDetector, FitOptions, fit_threshold

    rng = np.random.default_rng(0)
    x = rng.random((64, 140)).astype(np.float32)
    det = AutoencoderDetector("conv1d")
    det.fit(x, FitOptions(epochs=1, batch_size=32))
    path = Artifact(det, fit_threshold("mean_std", det.score(x)), {"model_version": "c"}).save(
        tmp_path / "conv"
    )
    assert not (path / FORWARD_FILE).exists()
    assert Artifact.load(path).detector.use_backend("auto") == "keras"
