"""Early stopping on held-out normal beats: stops, and keeps the best epoch's weights."""

from __future__ import annotations

import numpy as np
import pytest

from detector import AutoencoderDetector, DetectorConfigError, FitOptions


def test_stops_early_and_restores_the_best_epoch(ecg_arrays: tuple) -> None:
    x, y = ecg_arrays
    normal = x[y == 1]
    fit, hold = normal[:300], normal[300:500]
    det = AutoencoderDetector()
    # A high learning rate makes the held-out loss stall within a few epochs.
    hist = det.fit(
        fit,
        FitOptions(
            epochs=200, batch_size=64, learning_rate=0.02, early_stopping_patience=3, seed=0
        ),
        validation_data=hold,
    )
    assert hist.epochs_run < 200
    best = int(np.argmin(hist.val_loss))
    assert best < hist.epochs_run - 1  # it ran past its best epoch, patience epochs at most
    assert hist.epochs_run - 1 - best <= 3
    # restore_best_weights: the model now reconstructs the hold-out at the best epoch's loss.
    # (score is the per-window MAE; Keras' val loss is the mean over all samples.)
    assert float(det.score(hold).mean()) == pytest.approx(hist.val_loss[best], rel=1e-4)


def test_needs_held_out_beats() -> None:
    det = AutoencoderDetector()
    x = np.random.default_rng(0).random((32, 140))
    with pytest.raises(DetectorConfigError, match="early_stopping_patience: needs validation"):
        det.fit(x, FitOptions(epochs=2, early_stopping_patience=2))
