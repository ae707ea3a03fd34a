"""ecgwatch's scorer: window validation, normalisation, autoencoders, thresholds, artifacts.

Knows nothing of Kafka or Faust. Importing this package does not import Keras; the model
code does so lazily when a model is built, trained or loaded.
"""

from detector.artifact import Artifact
from detector.autoencoder import (
    AutoencoderDetector,
    EpochCallback,
    FitHistory,
    FitOptions,
    seed_everything,
)
from detector.errors import (
    ArtifactError,
    ChecksumMismatchError,
    DetectorConfigError,
    DetectorError,
    IncompatibleArtifactError,
    InvalidWindowError,
    MissingArtifactFileError,
    NotFittedError,
    RegistryError,
)
from detector.models import build_model, default_params
from detector.normalise import MinMaxNormaliser, WindowNormaliser
from detector.registry import ModelRegistry
from detector.threshold import POLICIES, Threshold, fit_threshold
from detector.validation import (
    FLAT_WINDOW,
    REASONS,
    WINDOW_LENGTH,
    validate_batch,
    validate_window,
)

__all__ = [
    "FLAT_WINDOW",
    "POLICIES",
    "REASONS",
    "WINDOW_LENGTH",
    "Artifact",
    "ArtifactError",
    "AutoencoderDetector",
    "ChecksumMismatchError",
    "DetectorConfigError",
    "DetectorError",
    "EpochCallback",
    "FitHistory",
    "FitOptions",
    "IncompatibleArtifactError",
    "InvalidWindowError",
    "MinMaxNormaliser",
    "MissingArtifactFileError",
    "ModelRegistry",
    "NotFittedError",
    "RegistryError",
    "Threshold",
    "WindowNormaliser",
    "build_model",
    "default_params",
    "fit_threshold",
    "seed_everything",
    "validate_batch",
    "validate_window",
]
