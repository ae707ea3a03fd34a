"""``ecgwatch worker`` imports TensorFlow only when its model or device needs it: a CPU worker
on a dense model that carries its NumPy pass starts without the framework (about a second and
~190 MiB instead of ~7 s and ~820 MiB); otherwise the framework is imported up front with its
start-up noise held back, as the other commands do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: Runs the real CLI up to the worker, which prints what was imported instead of running.
_PROBE = """
import json, sys
import pipeline.worker as w
from ecgwatch.cli import main
w.GPU_DEVICE_NODES = (sys.argv[3],)
w.run_worker = lambda settings: print(json.dumps(
    sorted(m for m in ("keras", "tensorflow") if m in sys.modules))) or 0
sys.exit(main(["worker", "--registry", sys.argv[1], "--device", sys.argv[2]]))
"""


def _registry(small_artifact: Path, root: Path, numpy_pass: bool) -> Path:
    shutil.copytree(small_artifact, root / "v1")
    if not numpy_pass:  # as an artifact written before the NumPy pass existed
        (root / "v1" / "forward.npz").unlink()
        sums = root / "v1" / "SHA256SUMS"
        lines = sums.read_text().splitlines(keepends=True)
        sums.write_text("".join(line for line in lines if not line.endswith("forward.npz\n")))
    (root / "latest").symlink_to("v1")
    return root


def _imported(registry: Path, device: str, gpu_node: Path) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(registry), device, str(gpu_node)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_a_cpu_worker_on_a_dense_model_starts_without_the_framework(
    small_artifact: Path, tmp_path: Path, device: str
) -> None:
    registry = _registry(small_artifact, tmp_path / "reg", numpy_pass=True)
    assert _imported(registry, device, tmp_path / "no-gpu-node") == []


def test_a_model_without_a_numpy_pass_imports_it_up_front(
    small_artifact: Path, tmp_path: Path
) -> None:
    registry = _registry(small_artifact, tmp_path / "reg", numpy_pass=False)
    assert "tensorflow" in _imported(registry, "auto", tmp_path / "no-gpu-node")


def test_a_gpu_driver_imports_it_up_front(small_artifact: Path, tmp_path: Path) -> None:
    registry = _registry(small_artifact, tmp_path / "reg", numpy_pass=True)
    node = tmp_path / "nvidia0"
    node.touch()
    assert "tensorflow" in _imported(registry, "auto", node)


def test_the_artifact_says_whether_it_carries_the_numpy_pass(
    small_artifact: Path, tmp_path: Path
) -> None:
    from detector.artifact import carries_numpy_pass

    assert carries_numpy_pass(small_artifact)
    bare = _registry(small_artifact, tmp_path / "reg", numpy_pass=False)
    assert not carries_numpy_pass(bare / "v1")
    assert not carries_numpy_pass(tmp_path / "no-such-artifact")
