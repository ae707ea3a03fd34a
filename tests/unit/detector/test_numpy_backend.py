"""The NumPy scoring backend matches Keras to 1e-5 and is refused for non-Dense models."""

from __future__ import annotations

import numpy as np
import pytest

from detector import AutoencoderDetector, DetectorConfigError, FitOptions


@pytest.fixture(scope="module")
def detector() -> AutoencoderDetector:
    rng = np.random.default_rng(0)
    det = AutoencoderDetector("dense")
    det.fit(rng.random((64, 140)).astype(np.float32), FitOptions(epochs=1, batch_size=32))
    return det


def test_numpy_backend_matches_keras(detector: AutoencoderDetector) -> None:
    x = np.random.default_rng(1).normal(size=(300, 140)).astype(np.float32)
    assert detector.use_backend("keras") == "keras"
    ref = detector.score(x)
    assert detector.use_backend("auto") == "numpy"
    np.testing.assert_allclose(detector.score(x), ref, rtol=0, atol=1e-5)
    assert detector.score(x[:0]).shape == (0,)


def test_numpy_backend_refuses_other_models(detector: AutoencoderDetector) -> None:
    import keras

    inputs = keras.Input(shape=(140,))
    h = keras.layers.Dense(8)(inputs)
    out = keras.layers.Dense(140)(keras.layers.Dropout(0.1)(h))
    det = AutoencoderDetector("dense")
    det.normaliser = detector.normaliser
    det.model = keras.Model(inputs, out)
    assert det.use_backend("auto") == "keras"
    with pytest.raises(DetectorConfigError, match="backend: 'numpy' needs a plain Dense chain"):
        det.use_backend("numpy")
    with pytest.raises(DetectorConfigError, match="backend: 'fast' must be auto, numpy or keras"):
        det.use_backend("fast")
