"""aiokafka's log lines, throttled: one line per message kind and minute.

While a broker is unreachable, aiokafka logs the same few ERROR lines for every retry (measured:
~65 lines a second from one worker), which buries the worker's own messages and floods a log
collector. :class:`RepeatFilter` lets the first record of each (logger, level, message
template) through, drops the repeats for :data:`REPEAT_WINDOW_S`, and appends to the next one
let through how many were dropped, so nothing goes unseen. (kafka-python, used for the short
reads on an assignment, backs off on its own: a few lines per attempt, 0.3 s to 21 s apart.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

__all__ = [
    "CLIENT_LOGGERS",
    "KAFKA_SELECTOR_LOGGER",
    "REPEAT_WINDOW_S",
    "RepeatFilter",
    "SlowTaskFilter",
    "apply_log_level",
    "throttle_client_logs",
]

#: kafka-python's loggers. At ``info`` they log every connection and metadata refresh of the
#: short-lived readers a worker runs on each assignment (alert-state restore, feed seeding):
#: ~50 lines per start that say nothing about the worker.
KAFKA_PYTHON_LOGGER = "kafka"
#: Logger name prefixes throttled: aiokafka, the consumer and producer of both engines.
CLIENT_LOGGERS = ("aiokafka",)
#: Seconds during which repeats of one message kind are counted instead of logged.
REPEAT_WINDOW_S = 60.0


class RepeatFilter(logging.Filter):
    """Pass one record per (logger, level, message template) and window; count the rest.

    Parameters
    ----------
    window_s : float
        Length of a window, in seconds.
    clock : callable
        Monotonic seconds (a fake one in tests).
    """

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True for a record to log (the repeat count appended), False for a counted repeat."""
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        started, dropped = self._seen.get(key, (None, 0))
        if started is not None and now - started < self.window_s:
            self._seen[key] = (started, dropped + 1)
            return False
        self._seen[key] = (now, 0)
        if dropped and started is not None:
            # Rendered here so that the count survives any formatter.
            record.msg = (
                f"{record.getMessage()} ({dropped} more like this in the last "
                f"{now - started:.0f} s were not logged)"
            )
            record.args = ()
        return True


def throttle_client_logs(
    prefixes: Iterable[str] = CLIENT_LOGGERS, window_s: float = REPEAT_WINDOW_S
) -> RepeatFilter:
    """Attach one :class:`RepeatFilter` to every existing logger under ``prefixes``.

    A logger's filters apply only to the records logged to it, not to its children's, so each
    module logger gets the filter (they all exist once ``aiokafka`` is imported). Handlers are
    left alone: Faust replaces them with its own.

    Parameters
    ----------
    prefixes : iterable of str
        Logger names whose loggers (and their children's) are throttled.
    window_s : float
        See :class:`RepeatFilter`.

    Returns
    -------
    RepeatFilter
        The filter now attached (shared by all those loggers).
    """
    import aiokafka  # noqa: F401  (imported for its module loggers)

    shared = RepeatFilter(window_s)
    names = list(logging.Logger.manager.loggerDict)
    for name in names:
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RepeatFilter) for f in logger.filters):
                logger.addFilter(shared)
    return shared


#: The kafka-python logger that warns when one step of its I/O loop took longer than 0.1 s.
KAFKA_SELECTOR_LOGGER = "kafka.net.selector"


class SlowTaskFilter(logging.Filter):
    """Drop kafka-python's "Task ... ran for 0.1xx s ... blocking the event loop" warning.

    The worker's short kafka-python reads (alert-state restore, feed seeding) run in a thread
    of a process that is scoring meanwhile; kafka-python times its steps by the wall clock, so
    a step that merely waited for the GIL is reported as a blocking loop. Nothing is wrong and
    nothing is to be done, so it is not shown (``worker.log_level: debug`` shows it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the slow-step warning, True for anything else."""
        return "blocking the event loop" not in record.getMessage()


def apply_log_level(level: str) -> None:
    """``worker.log_level`` for this process: the root logger at ``level``, kafka-python's
    at ``warning`` or above unless ``level`` is ``debug``.

    Parameters
    ----------
    level : str
        One of ``pipeline.settings.LOG_LEVELS``.
    """
    numeric = logging.getLevelName(level.upper())
    logging.getLogger().setLevel(numeric)
    kafka_level = numeric if level == "debug" else max(numeric, logging.WARNING)
    logging.getLogger(KAFKA_PYTHON_LOGGER).setLevel(kafka_level)
    selector = logging.getLogger(KAFKA_SELECTOR_LOGGER)
    for old in [f for f in selector.filters if isinstance(f, SlowTaskFilter)]:
        selector.removeFilter(old)
    if level != "debug":
        selector.addFilter(SlowTaskFilter())
