"""Exception hierarchy of the detector package.

Every error names the parameter (or file), the value received and what would fix it, so
that a worker log line or a CLI one-liner is enough to act on.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ChecksumMismatchError",
    "DetectorConfigError",
    "DetectorError",
    "IncompatibleArtifactError",
    "InvalidWindowError",
    "MissingArtifactFileError",
    "NotFittedError",
    "RegistryError",
]


class DetectorError(Exception):
    """Base class of every error raised by :mod:`detector`."""


class InvalidWindowError(DetectorError, ValueError):
    """A window is not exactly ``window_length`` finite numbers.

    Parameters
    ----------
    reason : str
        Stable machine-readable code (``wrong_length``, ``non_finite``, ``not_numeric``,
        ``wrong_shape``, ``empty``); dead-letter records and metrics carry it.
    message : str
        Human-readable explanation naming the problem and the fix.
    index : int or None
        Position of the offending window in a batch, when known.
    """

    def __init__(self, reason: str, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.index = index


class DetectorConfigError(DetectorError, ValueError):
    """A detector, model or threshold parameter has a value that is not allowed."""


class NotFittedError(DetectorError, RuntimeError):
    """An operation needs a fitted detector, normaliser or threshold."""


class ArtifactError(DetectorError):
    """A stored model artifact cannot be used.

    Parameters
    ----------
    path : str
        The file or folder at fault.
    message : str
        What is wrong with it and what to do.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class MissingArtifactFileError(ArtifactError, FileNotFoundError):
    """A file the artifact needs is absent."""


class ChecksumMismatchError(ArtifactError):
    """A file's sha256 differs from the one recorded in ``SHA256SUMS``."""


class IncompatibleArtifactError(ArtifactError):
    """``detector.json`` is malformed, fails its schema, or has an unsupported version."""


class RegistryError(DetectorError):
    """The model registry folder has no usable version or cannot be written."""
