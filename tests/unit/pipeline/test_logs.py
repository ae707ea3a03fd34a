"""aiokafka's repeated log lines are throttled: the first of each kind per window, then one
line saying how many were dropped; other loggers and other messages are untouched."""

from __future__ import annotations

import logging

import pytest

from pipeline.logs import RepeatFilter, throttle_client_logs


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logged() -> tuple[logging.Logger, Collect, Clock]:
    clock, sink = Clock(), Collect()
    logger = logging.getLogger("aiokafka.test-throttle")
    logger.propagate = False
    logger.addHandler(sink)
    flt = RepeatFilter(60.0, clock)
    logger.addFilter(flt)
    yield logger, sink, clock
    logger.removeFilter(flt)
    logger.removeHandler(sink)


def test_repeats_are_counted_and_reported_with_the_next_window(logged) -> None:
    logger, sink, clock = logged
    for i in range(100):
        logger.error("Unable connect to node with id %s: %s", 1, f"refused {i}")
        clock.now += 0.1
    assert sink.lines == ["Unable connect to node with id 1: refused 0"]
    clock.now = 61.0
    logger.error("Unable connect to node with id %s: %s", 1, "refused again")
    assert sink.lines[1] == (
        "Unable connect to node with id 1: refused again "
        "(99 more like this in the last 61 s were not logged)"
    )


def test_each_message_kind_and_level_has_its_own_window(logged) -> None:
    logger, sink, _ = logged
    logger.error("Unable to update metadata from %s", [1])
    logger.error("Failed fetch messages from %s", 1)
    logger.warning("Unable to update metadata from %s", [1])
    logger.error("Unable to update metadata from %s", [1])
    assert sink.lines == [
        "Unable to update metadata from [1]",
        "Failed fetch messages from 1",
        "Unable to update metadata from [1]",
    ]


def test_throttle_attaches_to_aiokafkas_module_loggers_only() -> None:
    shared = throttle_client_logs()
    try:
        fetcher = logging.getLogger("aiokafka.consumer.fetcher")
        assert shared in fetcher.filters and shared in logging.getLogger("aiokafka").filters
        assert shared not in logging.getLogger("pipeline.engine").filters
        assert throttle_client_logs() is not None
        assert sum(isinstance(f, RepeatFilter) for f in fetcher.filters) == 1  # not twice
    finally:
        for name in list(logging.Logger.manager.loggerDict):
            logger = logging.getLogger(name)
            for f in [f for f in logger.filters if isinstance(f, RepeatFilter)]:
                logger.removeFilter(f)


@pytest.mark.parametrize(
    ("level", "root", "kafka_python"),
    [
        ("info", logging.INFO, logging.WARNING),  # its connection chatter stays out
        ("warning", logging.WARNING, logging.WARNING),
        ("error", logging.ERROR, logging.ERROR),
        ("debug", logging.DEBUG, logging.DEBUG),  # everything, when asked for
    ],
)
def test_the_log_level_quiets_kafka_python_below_warning_unless_debugging(
    level: str, root: int, kafka_python: int
) -> None:
    from pipeline.logs import KAFKA_PYTHON_LOGGER, apply_log_level

    saved = logging.getLogger().level, logging.getLogger(KAFKA_PYTHON_LOGGER).level
    try:
        apply_log_level(level)
        assert logging.getLogger().level == root
        assert logging.getLogger(KAFKA_PYTHON_LOGGER).level == kafka_python
        assert logging.getLogger("kafka.net.connection").getEffectiveLevel() == kafka_python
    finally:
        logging.getLogger().setLevel(saved[0])
        logging.getLogger(KAFKA_PYTHON_LOGGER).setLevel(saved[1])


@pytest.mark.parametrize("level", ["warning", "debug"])
def test_kafka_python_slow_step_warning_is_hidden_unless_debugging(
    level: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A kafka-python reader thread in a busy worker waits for the GIL; kafka-python calls
    that a blocking loop. Hidden, except at debug; its other warnings stay."""
    from pipeline.logs import KAFKA_PYTHON_LOGGER, apply_log_level

    selector = logging.getLogger("kafka.net.selector")
    saved = logging.getLogger().level, logging.getLogger(KAFKA_PYTHON_LOGGER).level
    try:
        apply_log_level(level)
        with caplog.at_level(logging.DEBUG, logger="kafka.net.selector"):
            selector.warning(
                "Task <kafka.net.selector.Task object> ran for 0.117s (>0.100s threshold). It "
                "is blocking the event loop -- likely a tight sync loop inside a coroutine."
            )
            selector.warning("Task x left RUNNING after step; demoting to UNSCHEDULED")
        messages = [r.getMessage() for r in caplog.records if r.name == "kafka.net.selector"]
        assert any("left RUNNING" in m for m in messages)
        assert any("blocking the event loop" in m for m in messages) == (level == "debug")
    finally:
        apply_log_level("warning")
        logging.getLogger().setLevel(saved[0])
        logging.getLogger(KAFKA_PYTHON_LOGGER).setLevel(saved[1])
