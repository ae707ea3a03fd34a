"""Closing a reader must not log kafka-python's cancelled metadata refresh as an ERROR."""

from __future__ import annotations

import logging

import pytest
from kafka.errors import Cancelled, KafkaConnectionError

from pipeline.tail import _DropCancelledRefresh


def _record(exc: Exception) -> logging.LogRecord:
    return logging.LogRecord(
        "kafka.cluster", logging.ERROR, __file__, 1, "Metadata refresh: failed %s", (exc,), None
    )


def test_only_the_cancelled_refresh_is_dropped() -> None:
    f = _DropCancelledRefresh()
    assert f.filter(_record(Cancelled())) is False
    assert f.filter(_record(KafkaConnectionError("broker down"))) is True  # real failures pass
    other = logging.LogRecord("kafka.cluster", logging.ERROR, __file__, 1, "x %s", (1,), None)
    assert f.filter(other) is True


def test_filter_is_installed_once_on_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import tail

    logger = logging.getLogger("kafka.cluster")
    monkeypatch.setattr(logger, "filters", [])
    tail._quiet_cancelled_refresh()
    tail._quiet_cancelled_refresh()
    assert sum(isinstance(f, _DropCancelledRefresh) for f in logger.filters) == 1
