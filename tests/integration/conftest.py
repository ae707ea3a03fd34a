"""Fixtures for tests against a real Kafka broker.

``kafka_bootstrap`` (session-scoped) starts one local Apache Kafka broker (``ecgwatch.broker``)
on free ports in a temporary data dir, creates the pipeline topics and stops the broker at the
end. Set ``ECGWATCH_TEST_BOOTSTRAP=HOST:PORT`` to use a running broker instead (the topics are
still created, idempotently).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["kafka_bootstrap"]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``localhost:PORT`` of a broker that has the four pipeline topics."""
    from ecgwatch import broker
    from pipeline.topics import create_topics

    external = os.environ.get("ECGWATCH_TEST_BOOTSTRAP")
    if external:
        create_topics(external)
        yield external
        return
    data_dir: Path = tmp_path_factory.mktemp("kafka")
    port, controller_port = broker.free_ports(2)
    broker.fetch()
    st = broker.start(port, data_dir, controller_port)
    try:
        create_topics(st.bootstrap or f"localhost:{port}")
        yield f"localhost:{port}"
    finally:
        broker.stop(data_dir)
