"""``ecgwatch bench``: throughput, latency, scorer and memory of the worker against baselines.

Everything is measured in one run on the same pre-filled topics (see ``docs/performance.md``).
"""

__all__: list[str] = []
