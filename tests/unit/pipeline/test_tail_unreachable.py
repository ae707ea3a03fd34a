"""Reading a topic when no broker answers: a clear error, within the time asked for."""

from __future__ import annotations

import time

import pytest

from pipeline.errors import PipelineError
from pipeline.tail import read_records


def test_an_unreachable_broker_is_a_clear_error_within_the_timeout() -> None:
    t0 = time.monotonic()
    with pytest.raises(PipelineError, match=r"cannot reach Kafka at localhost:1 within 2 s"):
        next(iter(read_records("localhost:1", "ecg.alerts", timeout_s=2)))
    assert time.monotonic() - t0 < 15  # not the client's 30 s default, nor forever
