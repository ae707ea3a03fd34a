"""Process-level moments the consumption loops share: the first batch, the consume loop
itself, fail-stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = [
    "SHUTDOWN_LIMIT_S",
    "announce_first_batch",
    "arm_shutdown_watchdog",
    "consume_batches",
    "fail_stop",
    "freeze_heap",
    "write_started_file",
]

log = logging.getLogger(__name__)

#: From the stop signal to the end of the process, at most (then it exits without committing).
#: Longer than the cycle's delivery limit (``pipeline.cycle.SHUTDOWN_DELIVERY_TIMEOUT_S``), so a
#: clean shutdown that delivers its last batch always finishes first.
SHUTDOWN_LIMIT_S = 30.0

_watchdog: threading.Timer | None = None


def announce_first_batch(started_file: str = "") -> None:
    """Record the moment consumption began: a log line, and ``started_file`` when set.

    Parameters
    ----------
    started_file : str
        ``worker.started_file``: if not empty, the epoch time (seconds) is written there,
        atomically (a temporary file renamed into place), so a supervisor such as ``ecgwatch
        bench`` learns of the start without parsing the worker's output.
    """
    now = time.time()
    print(f"[worker] first batch consumed at {now:.6f}", flush=True)
    if started_file:
        try:
            write_started_file(started_file, now)
        except OSError as exc:  # a supervisor's convenience must not stop the worker
            log.warning("worker.started_file: cannot write %s: %s", started_file, exc)


def write_started_file(path: str | Path, epoch_s: float) -> None:
    """Write ``epoch_s`` to ``path`` atomically (a temporary file renamed into place), so a
    reader never sees a half-written time.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{epoch_s:.6f}\n")
    os.replace(tmp, target)


def fail_stop(why: str) -> None:
    """Exit at once without committing the offsets of an unfinished batch.

    ``os._exit`` skips every shutdown hook, so neither engine (nor Faust's ``take_events``,
    which acks in a ``finally``) can commit offsets whose outputs were never acknowledged;
    the batch is re-processed by whoever gets the partitions next.
    """
    log.critical("%s; exiting without committing (the batch will be re-processed)", why)
    logging.shutdown()
    os._exit(70)


def arm_shutdown_watchdog(limit_s: float = SHUTDOWN_LIMIT_S) -> None:
    """Make sure the process ends within ``limit_s`` of now, whatever the broker does.

    Called when a stop signal arrives. A client library's shutdown can wait for a broker that
    is gone for minutes (Faust does), with the metrics port still bound so a restarted worker
    cannot start; past the limit the process exits through :func:`fail_stop`, which commits
    nothing. Arming it again does not extend the limit.
    """
    global _watchdog
    if _watchdog is not None:
        return
    _watchdog = threading.Timer(
        limit_s, fail_stop, args=(f"shutdown did not finish within {limit_s:.0f} s",)
    )
    _watchdog.daemon = True
    _watchdog.start()


def freeze_heap() -> int:
    """Exempt every object alive now (imports, the loaded model) from the cyclic collector.

    A start-up heap of TensorFlow, Keras and NumPy is ~400,000 objects, and every full
    collection of CPython's oldest generation walks all of them (hundreds of milliseconds
    on the event loop). Frozen objects are never walked again; nothing is leaked, since
    they live as long as the process anyway.
    Call after start-up (and after loading a new model). Objects created later are collected
    as usual.

    Returns
    -------
    int
        Objects now frozen (``gc.get_freeze_count()``).
    """
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    return gc.get_freeze_count()


async def consume_batches(
    consumer: Any,
    stop: asyncio.Event,
    *,
    batch_size: int,
    timeout_s: float,
    lock: asyncio.Lock,
    ready: Callable[[], Awaitable[Any]],
    handle: Callable[[Any], Awaitable[None]],
    what: str,
    idle: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Fetch micro-batches until ``stop`` is set; hand each to ``handle`` under ``lock``.

    The loop of the batch engine and of the ingest stage (each passes its own ``handle``).

    Parameters
    ----------
    consumer : aiokafka consumer
        Anything with ``await getmany(timeout_ms=, max_records=)``.
    stop : asyncio.Event
        Checked before every fetch.
    batch_size, timeout_s : int, float
        The most records of one fetch, and how long it waits for them.
    lock : asyncio.Lock
        Held while a batch is handled (rebalances and timers take it too).
    ready : callable
        Awaited before each batch: the state a new assignment rebuilds must be in place.
    handle : callable
        ``await handle(fetched)`` for each non-empty fetch.
    what : str
        Named in the fail-stop message.
    idle : callable, optional
        Awaited under ``lock`` after an empty fetch (e.g. finish in-flight batches).

    A batch that raises anything but cancellation ends the process without committing it
    (:func:`fail_stop`): the records are consumed again after the restart.
    """
    timeout_ms = max(1, int(timeout_s * 1000))
    while not stop.is_set():
        fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=batch_size)
        if not fetched:
            if idle is not None:
                async with lock:
                    await idle()
            continue
        await ready()
        try:
            async with lock:
                await handle(fetched)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            fail_stop(f"unexpected error in {what}: {exc!r}")
