"""A CPU worker loads a dense model without importing Keras or TensorFlow (seconds instead of
the framework's import time, and hundreds of MiB less); ``device: gpu`` still asks Keras."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import json, sys
import pipeline.worker as w
from pipeline.errors import PipelineError
from pipeline.settings import WorkerSettings
w.GPU_DEVICE_NODES = (sys.argv[3],)  # this machine's GPU driver nodes, as the test says
try:
    artifact = w.load_model(WorkerSettings(registry=sys.argv[1], device=sys.argv[2]))
    out = {"backend": artifact.detector.backend, "version": artifact.version}
except PipelineError as exc:
    out = {"error": str(exc)}
out["imported"] = sorted(m for m in ("keras", "tensorflow") if m in sys.modules)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def registry(small_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    shutil.copytree(small_artifact, root / "v1")
    (root / "latest").symlink_to("v1")
    return root


def _load(registry: Path, device: str, gpu_node: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(registry), device, gpu_node],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_no_gpu_driver_no_keras(registry: Path, tmp_path: Path, device: str) -> None:
    got = _load(registry, device, str(tmp_path / "no-such-device"))
    assert got == {"backend": "numpy", "version": "test-small", "imported": []}


def test_a_gpu_driver_makes_the_worker_ask_keras(registry: Path, tmp_path: Path) -> None:
    node = tmp_path / "nvidia0"
    node.touch()  # a driver node but no usable GPU: Keras is asked, and says no GPU
    got = _load(registry, "auto", str(node))
    assert got["backend"] == "numpy" and "keras" in got["imported"]


def test_device_gpu_without_one_is_refused_by_name(registry: Path, tmp_path: Path) -> None:
    got = _load(registry, "gpu", str(tmp_path / "no-such-device"))
    assert "worker.device: 'gpu' requested but" in got["error"], json.dumps(got)
