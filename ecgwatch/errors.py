"""Errors of the command layer."""

__all__ = ["EcgwatchError"]


class EcgwatchError(Exception):
    """A command cannot go on; the message says why and what to do."""
