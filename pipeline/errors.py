"""Exception hierarchy of the pipeline package."""

from __future__ import annotations

__all__ = ["InvalidMessageError", "PipelineConfigError", "PipelineError"]


class PipelineError(Exception):
    """Base class of every error raised by :mod:`pipeline`."""


class PipelineConfigError(PipelineError, ValueError):
    """A worker/pipeline setting has a value that is not allowed."""


class InvalidMessageError(PipelineError, ValueError):
    """A Kafka message cannot be turned into a window.

    Parameters
    ----------
    reason : str
        Stable code carried by the dead-letter record and the
        ``ecg_windows_rejected_total{reason}`` metric (see ``pipeline.codec.REJECT_REASONS``).
    detail : str
        Human-readable explanation naming the field, the value received and the fix.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
