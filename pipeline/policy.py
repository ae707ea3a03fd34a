"""Alert policy: per-device de-duplication with a cooldown, unless severity rises."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import PipelineConfigError

__all__ = ["SEVERITIES", "AlertPolicy"]

#: Severity levels, lowest first.
SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class AlertPolicy:
    """Decide which anomalous windows become alerts.

    Parameters
    ----------
    cooldown_s : float
        After an alert for a device, further anomalies of that device within this many
        seconds (of window time, ``ts``, before or after it: windows can arrive out of
        order) are suppressed — unless their severity is higher.
    critical_ratio : float
        ``score / threshold`` at or above which an alert is ``critical`` (else ``warning``).
    """

    cooldown_s: float = 30.0
    critical_ratio: float = 2.0

    def __post_init__(self) -> None:
        if self.cooldown_s < 0:
            raise PipelineConfigError(f"alerts.cooldown_s: {self.cooldown_s} must be >= 0")
        if self.critical_ratio <= 1.0:
            raise PipelineConfigError(
                f"alerts.critical_ratio: {self.critical_ratio} must be > 1 (a multiple of the "
                "threshold)"
            )

    def severity(self, score: float, threshold: float) -> str:
        """``critical`` when score >= critical_ratio × threshold, else ``warning``."""
        return "critical" if score >= self.critical_ratio * threshold else "warning"

    def decide(
        self,
        state: MutableMapping[str, Any],
        device_id: str,
        ts: float,
        score: float,
        threshold: float,
    ) -> str | None:
        """Return the severity of the alert to raise for this anomaly, or ``None``.

        ``state`` maps device id to ``{"ts": last alert window ts, "level": severity index}``
        (a Faust table in the worker, a dict in tests) and is updated when an alert is raised.
        """
        severity = self.severity(score, threshold)
        level = SEVERITIES.index(severity)
        last = state.get(device_id)
        if last is None:
            state[device_id] = {"ts": float(ts), "level": level}
            return severity
        last_ts, last_level = float(last["ts"]), int(last["level"])
        # Both directions: a late (out-of-order) window close to the last alert is the same
        # episode and must not alert again.
        if abs(ts - last_ts) < self.cooldown_s and level <= last_level:
            return None
        if ts >= last_ts:
            state[device_id] = {"ts": float(ts), "level": level}
        elif abs(ts - last_ts) < self.cooldown_s:
            # A late window escalated the current episode: keep its time, raise its level.
            state[device_id] = {"ts": last_ts, "level": max(level, last_level)}
        # else: a late window of an older episode alerts, but the state keeps the newest one.
        return severity

    @staticmethod
    def alert_id(device_id: str, seq: int, model_version: str) -> str:
        """Deterministic id, so a re-processed window yields the same alert id (dedupable)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ecgwatch:{model_version}:{device_id}:{seq}"))
