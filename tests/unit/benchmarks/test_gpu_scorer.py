"""``python -m benchmarks.gpu_scorer`` with its backend-specific scorer replaced by the bare
NumPy pass: arguments, the table, the JSON file and the exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gpu_scorer
from benchmarks.scorer import bare_numpy


def _numpy_scorer(offset: float) -> Any:
    def scorer(model_path: Path, device: str, lo: float, hi: float) -> Any:
        import keras

        ref = bare_numpy(keras.saving.load_model(model_path, compile=False), lo, hi)
        return lambda x: ref(x) + offset

    return scorer


@pytest.mark.parametrize(("offset", "status"), [(0.0, 0), (1e-3, 1)])
def test_table_json_and_status(
    small_artifact: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    offset: float,
    status: int,
) -> None:
    monkeypatch.setattr(gpu_scorer, "_has_gpu", lambda: False)
    monkeypatch.setattr(gpu_scorer, "_scorer", _numpy_scorer(offset))
    out = tmp_path / "gpu.json"
    argv = ["--registry", str(small_artifact.parent), "--version", small_artifact.name]
    argv += ["--min-seconds", "0.01", "--out", str(out)]
    assert gpu_scorer.main(argv) == status
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == [
        "windows/s",
        "batch",
        "1",
        "batch",
        "32",
        "batch",
        "256",
        "batch",
        "4096",
    ]
    assert [line.split()[0] for line in lines[2:4]] == ["numpy", "cpu"]
    assert lines[-1] == "no GPU visible to the backend: CPU rows only"
    results = json.loads(out.read_text())
    assert results["devices"] == ["cpu"]
    assert results["model_version"] == "test-small"
    assert list(results["windows_per_s"]) == ["numpy", "cpu"]
    assert list(results["windows_per_s"]["cpu"]) == ["1", "32", "256", "4096"]
    assert results["max_abs_diff_vs_numpy"]["cpu"] == pytest.approx(offset, abs=1e-7)
