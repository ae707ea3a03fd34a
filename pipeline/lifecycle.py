"""Process-level moments both consumption engines share: the first batch, and fail-stop."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

__all__ = ["announce_first_batch", "fail_stop"]

log = logging.getLogger(__name__)


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
        target = Path(started_file)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(f"{now:.6f}\n")
            os.replace(tmp, target)
        except OSError as exc:  # a supervisor's convenience must not stop the worker
            log.warning("worker.started_file: cannot write %s: %s", started_file, exc)


def fail_stop(why: str) -> None:
    """Exit at once without committing the offsets of an unfinished batch.

    ``os._exit`` skips every shutdown hook, so neither engine (nor Faust's ``take_events``,
    which acks in a ``finally``) can commit offsets whose outputs were never acknowledged;
    the batch is re-processed by whoever gets the partitions next.
    """
    log.critical("%s; exiting without committing (the batch will be re-processed)", why)
    logging.shutdown()
    os._exit(70)
