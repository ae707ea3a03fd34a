"""The streaming worker: Faust app, codecs, agents, alert policy, metrics.

Imports the detector, never the training code.
"""

__all__: list[str] = []
