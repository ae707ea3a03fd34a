"""Rebuild the batch engine's alert state from the alerts topic itself.

The batch engine keeps its per-device alert state in memory. After a restart (or when a
partition moves to it) that state would be empty, so an open episode would be lost (no ``end``)
and its next anomalous window would open it again with a second ``start`` — and a window
re-processed after a crash (its record acknowledged, its offset not yet committed) would raise
the same record twice. The alerts topic already holds what the state needs. On every partition
assignment the engine reads the newest alerts (at most :data:`RESTORE_MAX_RECORDS` per
partition) and folds them into the state: :func:`fold_episodes` (``alerts.mode: episodes``:
per device, its newest episode record; an episode whose newest record is not ``end`` is open)
or :func:`fold_alerts` (``per_window``: the cooldown state).

What a restored open episode does not know: the windows after its newest record that were
committed before the crash without producing a record (normal windows, rate-limited anomalous
ones). Its counts (``windows_seen``, ``anomalous_windows``) may then be a little low, and its
run of normal windows starts again from zero, so its ``end`` may come a few windows later than
it would have; no ``start`` is repeated and no ``end`` is lost.

Reading is best-effort by design: if the topic cannot be read in time the engine logs a warning
and goes on with what it has — an alert may then be repeated, never lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.policy import (
    CONDITION_ANOMALOUS_BEATS,
    CONDITION_FEED_STALE,
    KIND_TECHNICAL,
    PHASES,
    SEVERITIES,
    state_from_record,
)
from pipeline.security import KafkaSecurity
from pipeline.tail import read_records

__all__ = [
    "RESTORE_MAX_RECORDS",
    "RESTORE_TIMEOUT_S",
    "fold_alerts",
    "fold_episodes",
    "fold_stale",
    "merge_restored",
    "read_recent_alerts",
]

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
            if a.get("kind") == KIND_TECHNICAL:  # a silent feed is no cooldown of an anomaly
                continue
            device, ts, level = str(a["device_id"]), float(a["ts"]), SEVERITIES.index(a["severity"])
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        per_device.setdefault(device, []).append((ts, level))
    state = {}
    for device, items in per_device.items():
        newest = max(ts for ts, _ in items)
        level = max(lv for ts, lv in items if newest - ts < cooldown_s)
        state[device] = {"ts": newest, "level": level}
    return state


#: Order of the records of one window: an ``end`` (a quiet gap closed the old episode) comes
#: before the ``start`` of the new one the same window opens.
_PHASE_ORDER = {"end": 0, "start": 1, "update": 2}


def fold_episodes(alerts: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The episode state implied by past episode records: per device, its newest record's.

    Parameters
    ----------
    alerts : iterable of mapping
        Alert records in any order. Records that are not ``anomalous_beats`` episode records
        (no ``phase``, e.g. per-window alerts; technical ones; missing fields) are skipped.

    Returns
    -------
    dict
        ``{device_id: state}`` as :meth:`pipeline.policy.AlertPolicy.step` reads it: an open
        episode when the device's newest record (by window ``ts``, then ``seq``, then phase)
        is a ``start`` or ``update``, a closed state after an ``end``. Either way the state
        remembers that window, so re-processing it (or anything before it) changes nothing.
    """
    state: dict[str, dict[str, Any]] = {}
    for device, a in _newest_per_device(alerts, CONDITION_ANOMALOUS_BEATS).items():
        try:
            state[device] = state_from_record(a)
        except (KeyError, TypeError, ValueError):
            continue
    return state


def fold_stale(alerts: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The open ``feed_stale`` episodes implied by past records (for
    :meth:`pipeline.feeds.FeedWatch.restore`): per device whose newest ``feed_stale`` record
    is not an ``end``, that episode (``episode_id``, ``first_ts``, ``last_seen_at``,
    ``silent_s``, ``started_at``)."""
    out: dict[str, dict[str, Any]] = {}
    for device, a in _newest_per_device(alerts, CONDITION_FEED_STALE).items():
        if a["phase"] == "end":
            continue
        try:
            out[device] = {
                "episode_id": str(a["episode_id"]),
                "first_ts": float(a["first_ts"]),
                "last_seen_at": float(a["last_seen_at"]),
                "silent_s": float(a["silent_s"]),
                "started_at": float(a["detected_at"]),
            }
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _newest_per_device(
    alerts: Iterable[Mapping[str, Any]], condition: str
) -> dict[str, Mapping[str, Any]]:
    """Per device, its newest episode record of ``condition`` (by window ``ts``, ``seq``,
    phase). Records before technical alerts existed have no ``condition``: anomalous beats."""
    newest: dict[str, tuple[tuple[float, int, int], Mapping[str, Any]]] = {}
    for a in alerts:
        try:
            phase = a["phase"]
            if phase not in PHASES or a.get("condition", CONDITION_ANOMALOUS_BEATS) != condition:
                continue
            device = str(a["device_id"])
            key = (float(a["ts"]), int(a["seq"]), _PHASE_ORDER[phase])
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if device not in newest or newest[device][0] < key:
            newest[device] = (key, a)
    return {device: a for device, (_, a) in newest.items()}


def merge_restored(
    state: dict[str, Any], restored: Mapping[str, dict[str, Any]], episodes: bool
) -> None:
    """Put restored entries into the live ``state`` where they are newer than what it has.

    Episode states compare by the last window they have seen (``(seen_ts, seen_seq)``),
    cooldown states by ``ts``; an entry of the other mode is always replaced.
    """
    for device, entry in restored.items():
        current = state.get(device)
        if current is None:
            state[device] = entry
        elif episodes:
            have = (current.get("seen_ts"), current.get("seen_seq"))
            if None in have or have <= (entry["seen_ts"], entry["seen_seq"]):
                state[device] = entry
        elif "level" not in current or "open" in current or float(current["ts"]) <= entry["ts"]:
            state[device] = entry


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
