"""Process-level moments both consumption engines share: the first batch, and fail-stop."""

from __future__ import annotations

import logging
import os
import time

__all__ = ["announce_first_batch", "fail_stop"]

log = logging.getLogger(__name__)


def announce_first_batch() -> None:
    """Print the one line operators (and ``ecgwatch bench``) time from: consumption has begun."""
    print(f"[worker] first batch consumed at {time.time():.6f}", flush=True)


def fail_stop(why: str) -> None:
    """Exit at once without committing the offsets of an unfinished batch.

    ``os._exit`` skips every shutdown hook, so neither engine (nor Faust's ``take_events``,
    which acks in a ``finally``) can commit offsets whose outputs were never acknowledged;
    the batch is re-processed by whoever gets the partitions next.
    """
    log.critical("%s; exiting without committing (the batch will be re-processed)", why)
    logging.shutdown()
    os._exit(70)
