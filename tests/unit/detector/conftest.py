"""Fixtures shared by the detector's unit tests."""

from __future__ import annotations

import numpy as np
import pytest

from detector import AutoencoderDetector, FitOptions
from detector.align import AlignmentGrid
from detector.gate import AlignmentGate
from detector.length import LengthSearch


@pytest.fixture(scope="session")
def checked(ecg_arrays: tuple) -> tuple[AutoencoderDetector, dict[str, np.ndarray]]:
    """A small dense detector (40 epochs) with alignment, the alignment gate and the length
    search, and the beats it was fitted on (``fit``), held-out normals (``hold``) and
    abnormal beats (``abnormal``)."""
    x, y = ecg_arrays
    normal = x[y == 1]
    parts = {"fit": normal[:1500], "hold": normal[1500:2000], "abnormal": x[y == 0][:500]}
    det = AutoencoderDetector(
        params={"encoder_widths": [64, 32, 8]},
        score_smoothing=2.0,
        noise_discount=1.5,
        normalisation="zscore_window",
        align=AlignmentGrid(6, 0.0, 1, 0.04),
        align_gate=AlignmentGate(),
        length_search=LengthSearch(),
    )
    det.fit(parts["fit"], FitOptions(epochs=40, batch_size=64, seed=1))
    det.use_backend("numpy")
    return det, parts
