"""fit's options object and its per-epoch report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detector import AutoencoderDetector, DetectorConfigError, FitOptions


@pytest.fixture(scope="module")
def normal(ecg_arrays: tuple) -> np.ndarray:
    x, y = ecg_arrays
    return x[y == 1][:256]


def test_options_are_frozen_and_checked() -> None:
    opts = FitOptions(epochs=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.epochs = 4  # type: ignore[misc]
    with pytest.raises(DetectorConfigError, match="epochs/batch_size: got 0/512"):
        FitOptions(epochs=0)
    with pytest.raises(DetectorConfigError, match="noise_factor: -0.1 must be >= 0"):
        FitOptions(noise_factor=-0.1)


def test_on_epoch_is_called_once_per_epoch_with_the_losses(normal: np.ndarray) -> None:
    calls: list[tuple[int, int, dict[str, float]]] = []
    det = AutoencoderDetector()
    hist = det.fit(
        normal[:192],
        FitOptions(epochs=3, batch_size=64, seed=4),
        validation_data=normal[192:],
        on_epoch=lambda done, total, logs: calls.append((done, total, logs)),
    )
    assert [(done, total) for done, total, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert [logs["loss"] for _, _, logs in calls] == pytest.approx(hist.loss, rel=1e-6)
    assert [logs["val_loss"] for _, _, logs in calls] == pytest.approx(hist.val_loss, rel=1e-6)
    assert all(isinstance(v, float) for _, _, logs in calls for v in logs.values())


def test_on_epoch_stops_with_early_stopping(normal: np.ndarray) -> None:
    calls: list[int] = []
    hist = AutoencoderDetector().fit(
        normal[:192],
        FitOptions(epochs=200, batch_size=64, learning_rate=0.02, early_stopping_patience=2),
        validation_data=normal[192:],
        on_epoch=lambda done, _total, _logs: calls.append(done),
    )
    assert hist.epochs_run < 200 and calls == list(range(1, hist.epochs_run + 1))


def test_the_report_does_not_change_training(normal: np.ndarray) -> None:
    opts = FitOptions(epochs=2, batch_size=64, seed=9, noise_factor=0.05)
    plain, watched = AutoencoderDetector(), AutoencoderDetector()
    h1 = plain.fit(normal, opts)
    h2 = watched.fit(normal, opts, on_epoch=lambda *_a: None)
    assert h1.loss == h2.loss
    np.testing.assert_array_equal(plain.score(normal[:32]), watched.score(normal[:32]))
