"""Rebuild the batch engine's alert de-duplication state from the alerts topic itself.

The batch engine keeps its per-device alert state in memory. After a restart (or when a
partition moves to it) that state would be empty, so the first anomaly of a device inside an
alert's cooldown would alert again — and a window re-processed after a crash (its alert was
acknowledged, its offset not yet committed) would raise the same alert twice. The alerts topic
already holds what the state needs: every alert with its device, window time and severity. On
every partition assignment the engine reads the newest alerts (at most
:data:`RESTORE_MAX_RECORDS` per partition) and folds them into the state with
:func:`fold_alerts`.

Reading is best-effort by design: if the topic cannot be read in time the engine logs a warning
and goes on with what it has — an alert may then be repeated, never lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.policy import SEVERITIES
from pipeline.security import KafkaSecurity
from pipeline.tail import read_records

__all__ = ["RESTORE_MAX_RECORDS", "RESTORE_TIMEOUT_S", "fold_alerts", "read_recent_alerts"]

log = logging.getLogger(__name__)

#: Newest alerts read per partition of the alerts topic.
RESTORE_MAX_RECORDS = 20_000
#: Longest time one restore may take before the engine goes on without the rest.
RESTORE_TIMEOUT_S = 20.0


def fold_alerts(
    alerts: Iterable[Mapping[str, Any]], cooldown_s: float
) -> dict[str, dict[str, Any]]:
    """The alert policy's state implied by past alerts: per device, its newest episode.

    Parameters
    ----------
    alerts : iterable of mapping
        Alert records (``device_id``, ``ts``, ``severity``), in any order. Records without
        those fields are skipped.
    cooldown_s : float
        The policy's cooldown: alerts within it of a device's newest alert belong to the same
        episode, whose level is the highest among them.

    Returns
    -------
    dict
        ``{device_id: {"ts": newest alert ts, "level": severity index}}`` as
        :meth:`pipeline.policy.AlertPolicy.decide` reads it.
    """
    per_device: dict[str, list[tuple[float, int]]] = {}
    for a in alerts:
        try:
            device, ts, level = str(a["device_id"]), float(a["ts"]), SEVERITIES.index(a["severity"])
        except (KeyError, TypeError, ValueError):
            continue
        per_device.setdefault(device, []).append((ts, level))
    state = {}
    for device, items in per_device.items():
        newest = max(ts for ts, _ in items)
        level = max(lv for ts, lv in items if newest - ts < cooldown_s)
        state[device] = {"ts": newest, "level": level}
    return state


def read_recent_alerts(
    bootstrap: str,
    topic: str,
    security: KafkaSecurity,
    *,
    max_records: int = RESTORE_MAX_RECORDS,
    timeout_s: float = RESTORE_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """The newest ``max_records`` alert records of each partition of ``topic`` (decoded JSON).

    Blocking (kafka-python; the engine runs it in a thread). Undecodable records are skipped.
    Stops at ``timeout_s`` with what it has read (logged).
    """
    started = time.monotonic()
    out = list(
        read_records(
            bootstrap,
            topic,
            last_per_partition=max_records,
            until_end=True,
            skip_invalid=True,
            timeout_s=timeout_s,
            security=security,
        )
    )
    if time.monotonic() - started > timeout_s:
        log.warning("alert state: stopped reading %s after %.0f s", topic, timeout_s)
    return out
