"""The live device view behind ``GET /devices``: the devices this worker process owns.

JSON (``docs/operations.md``, "Device view"): per device its last window (time, seq, score,
whether anomalous), when this process consumed it, its status (``active`` / ``stale``) and its
open alert episodes (id, kind, condition, phase, priority, since). Counts only go to
Prometheus (``ecg_devices_active``, ``ecg_devices_stale``, ``ecg_alert_episodes_open``):
a device label there would be one series per patient.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pipeline.feeds import DeviceFeed, FeedWatch
from pipeline.policy import (
    CONDITION_ANOMALOUS_BEATS,
    CONDITION_FEED_STALE,
    KIND_PHYSIOLOGICAL,
    KIND_TECHNICAL,
    PRIORITY_OF_SEVERITY,
    SEVERITIES,
    STALE_PRIORITY,
)

__all__ = ["DEVICE_VIEW_VERSION", "device_view"]

#: ``schema_version`` of the ``/devices`` document.
DEVICE_VIEW_VERSION = 1


def device_view(
    feeds: FeedWatch, state: Mapping[str, Any], now: float | None = None
) -> dict[str, Any]:
    """The ``/devices`` document.

    Parameters
    ----------
    feeds : FeedWatch
        The worker's tracked devices.
    state : mapping
        The per-device alert state (a dict or the Faust table): open physiological episodes.
    now : float, optional
        Wall clock, epoch seconds (default: the feed watch's clock).
    """
    now = feeds.clock() if now is None else now
    devices = [_device(d, f, state, now) for d, f in feeds.snapshot()]
    return {
        "schema_version": DEVICE_VIEW_VERSION,
        "pid": os.getpid(),
        "generated_at": now,
        "stale_after_s": feeds.stale_after_s,
        "active": sum(1 for d in devices if d["status"] == "active"),
        "stale": sum(1 for d in devices if d["status"] == "stale"),
        "devices": devices,
    }


def _device(device_id: str, feed: DeviceFeed, state: Mapping[str, Any], now: float) -> dict:
    episodes = []
    physiological = _open_physiological(state, device_id)
    if physiological is not None:
        episodes.append(physiological)
    stale = feed.stale
    if stale is not None:
        episodes.append(
            {
                "episode_id": stale["episode_id"],
                "kind": KIND_TECHNICAL,
                "condition": CONDITION_FEED_STALE,
                "phase": "start",
                "priority": STALE_PRIORITY,
                "since": stale["last_seen_at"],
            }
        )
    return {
        "device_id": device_id,
        "partition": feed.partition,
        "status": "stale" if stale is not None else "active",
        "last_seen_at": feed.seen_at,
        "silent_s": round(max(0.0, now - feed.seen_at), 3),
        "last_seq": feed.seq,
        "last_ts": feed.ts,
        "last_score": feed.score,
        "last_anomaly": feed.anomaly,
        "episodes": episodes,
    }


def _open_physiological(state: Mapping[str, Any], device_id: str) -> dict[str, Any] | None:
    try:
        entry = state.get(device_id)
    except Exception:  # a table mid-rebalance: show the device without its episode
        return None
    if not isinstance(entry, Mapping) or not entry.get("open"):
        return None
    try:
        priority = PRIORITY_OF_SEVERITY[SEVERITIES[int(entry["level"])]]
        # The last record of an episode whose update time is still its first window's is
        # its start; any later one was an update.
        phase = "start" if float(entry["updated_ts"]) == float(entry["first_ts"]) else "update"
        return {
            "episode_id": entry["episode_id"],
            "kind": KIND_PHYSIOLOGICAL,
            "condition": CONDITION_ANOMALOUS_BEATS,
            "phase": phase,
            "priority": priority,
            "since": float(entry["first_ts"]),
            "anomalous_windows": int(entry["anomalous_windows"]),
            "peak_score": float(entry["peak_score"]),
        }
    except (KeyError, TypeError, ValueError, IndexError):
        return None
