"""A running broker for the benchmark: the one given, or a throwaway local one."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["broker_for"]


@contextlib.contextmanager
def broker_for(bootstrap: str | None, tmp: Path) -> Iterator[str]:
    """Yield ``bootstrap``, or start a local broker in ``tmp`` and stop it afterwards."""
    if bootstrap:
        yield bootstrap
        return
    from ecgwatch import broker

    data_dir = tmp / "kafka"
    port, controller = broker.free_ports(2)
    print(f"[bench] starting a throwaway Kafka broker on :{port}", file=sys.stderr, flush=True)
    broker.fetch()
    st = broker.start(port, data_dir, controller)
    try:
        yield st.bootstrap or f"localhost:{port}"
    finally:
        broker.stop(data_dir)
