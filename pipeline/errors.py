"""Errors of the streaming pipeline."""

__all__ = ["PipelineError"]


class PipelineError(Exception):
    """The pipeline cannot go on; the message names the problem and the fix."""
