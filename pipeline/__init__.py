"""The streaming worker: Kafka topics, codecs, the micro-batch logic, two consumption engines
(aiokafka batch loop by default, or a Faust agent), alert policy, metrics, replay/tail tools.

Imports the detector, never the training code.
"""

__all__: list[str] = []
