"""ecgwatch's scorer: window validation, normalisation, autoencoders, thresholds, artifacts.

Knows nothing of Kafka or Faust. Importing this package does not import Keras; the model
code does so lazily when a model is built, trained or loaded.

The names below are the stable contract, in the manner of alibi-detect's
``fit / infer_threshold / predict / save / load``: :class:`AutoencoderDetector` (``fit``,
``score``), :func:`fit_threshold` (the decision, label-free), :class:`Artifact` (``predict``:
scores and decisions together; ``save`` / ``load`` with checksums), :class:`ModelRegistry`
(versions, ``latest``, ``promote`` / ``rollback``) and the error hierarchy. Everything else is
in its submodule (``detector.validation``, ``detector.normalise``, ``detector.drift``, ...).
"""

from detector.artifact import Artifact, Prediction
from detector.autoencoder import AutoencoderDetector, FitOptions
from detector.errors import (
    ArtifactError,
    DetectorConfigError,
    DetectorError,
    InvalidWindowError,
    RegistryError,
)
from detector.registry import ModelRegistry
from detector.threshold import Threshold, fit_threshold

__all__ = [
    "Artifact",
    "ArtifactError",
    "AutoencoderDetector",
    "DetectorConfigError",
    "DetectorError",
    "FitOptions",
    "InvalidWindowError",
    "ModelRegistry",
    "Prediction",
    "RegistryError",
    "Threshold",
    "fit_threshold",
]
