"""Exception hierarchy of the training package."""

from __future__ import annotations

__all__ = ["DataError", "PresetError", "TrainingError"]


class TrainingError(Exception):
    """Base class of every error raised by :mod:`training`."""


class DataError(TrainingError, ValueError):
    """A data source is missing or malformed; the message names the file, line and problem."""


class PresetError(TrainingError, ValueError):
    """A preset or training config has an unknown key or a value that is not allowed."""
