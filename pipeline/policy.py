"""Alert policy: per-device alert episodes (``start`` / ``update`` / ``end``), or — behind
``alerts.mode: per_window`` — the older per-window alerts de-duplicated with a cooldown.

An *episode* is what a subscriber wants to know about a device: when its abnormal rhythm began,
that it is still going on (at most one ``update`` per ``alerts.update_interval_s`` of window
time, or at once when the priority rises) and when it ended (after
``alerts.end_after_normal`` consecutive normal windows, or when the device's next window comes
``alerts.end_after_s`` or more of window time after its last anomalous one).

The per-device episode state is a small JSON-serialisable dict (a Faust table's changelog
stores it as JSON; the batch engine rebuilds it from the alerts topic, ``pipeline.alert_state``).
:meth:`AlertPolicy.step` is a pure function of (state, window) → (new state, events), so the
same windows always give the same records, with the same ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import PipelineConfigError

__all__ = [
    "CONDITION_ANOMALOUS_BEATS",
    "CONDITION_FEED_STALE",
    "KIND_PHYSIOLOGICAL",
    "KIND_TECHNICAL",
    "MODES",
    "PHASES",
    "PRIORITIES",
    "PRIORITY_OF_SEVERITY",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "STALE_PRIORITY",
    "STALE_SEVERITY",
    "AlertPolicy",
    "Event",
    "closed_state",
    "is_episode_entry",
    "stale_episode_id",
    "stale_record",
    "state_from_record",
]

#: Severity levels, lowest first.
SEVERITIES = ("warning", "critical")
#: Alert priorities (IHE PCD ACM), lowest first.
PRIORITIES = ("low", "medium", "high")
#: An anomalous-beats episode's priority from its highest severity so far. ``low`` is not used
#: by physiological episodes (it is left for technical alerts).
PRIORITY_OF_SEVERITY = {"warning": "medium", "critical": "high"}
#: ``alerts.mode`` values.
MODES = ("episodes", "per_window")
#: Episode phases, in the order they happen.
PHASES = ("start", "update", "end")
#: ``schema_version`` of an episode alert record (per-window records carry none).
SCHEMA_VERSION = 2
KIND_PHYSIOLOGICAL = "physiological"
CONDITION_ANOMALOUS_BEATS = "anomalous_beats"
#: Technical alerts (``pipeline.feeds``): a device's feed went silent.
KIND_TECHNICAL = "technical"
CONDITION_FEED_STALE = "feed_stale"
#: A lost feed is a technical alarm of medium priority: below a critical physiological
#: episode (``high``), above advisory conditions (IEC 60601-1-8's ranking).
STALE_PRIORITY = "medium"
#: ``severity`` of a ``feed_stale`` record (the field is on every alert record).
STALE_SEVERITY = "warning"

#: One episode record to emit: (phase, the episode state it describes).
Event = tuple[str, Mapping[str, Any]]


def is_episode_entry(entry: Any) -> bool:
    """Whether ``entry`` is an episode state (not absent, nor a per-window cooldown state)."""
    return isinstance(entry, Mapping) and "open" in entry and "seen_ts" in entry


@dataclass(frozen=True)
class AlertPolicy:
    """Decide which windows become alert records.

    Parameters
    ----------
    cooldown_s : float
        ``per_window`` mode only: after an alert for a device, further anomalies of that device
        within this many seconds (of window time, ``ts``, before or after it: windows can
        arrive out of order) are suppressed — unless their severity is higher.
    critical_ratio : float
        ``score / threshold`` at or above which a window is ``critical`` (else ``warning``).
    mode : str
        ``episodes`` (default) or ``per_window``.
    update_interval_s : float
        Episodes: at most one ``update`` per this many seconds of window time (0: one per
        anomalous window), except that a rise in priority updates at once.
    end_after_normal : int
        Episodes: this many consecutive normal windows end an episode.
    end_after_s : float
        Episodes: a window arriving this many seconds (window time) or more after the episode's
        last anomalous window ends it (checked when the device's next window arrives; an
        anomalous one then opens a new episode).
    """

    cooldown_s: float = 30.0
    critical_ratio: float = 2.0
    mode: str = "episodes"
    update_interval_s: float = 30.0
    end_after_normal: int = 10
    end_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.cooldown_s < 0:
            raise PipelineConfigError(f"alerts.cooldown_s: {self.cooldown_s} must be >= 0")
        if self.critical_ratio <= 1.0:
            raise PipelineConfigError(
                f"alerts.critical_ratio: {self.critical_ratio} must be > 1 (a multiple of the "
                "threshold)"
            )
        if self.mode not in MODES:
            raise PipelineConfigError(
                f"alerts.mode: {self.mode!r} is not allowed; must be {' or '.join(MODES)}"
            )
        if not 0 <= self.update_interval_s <= 86400:
            raise PipelineConfigError(
                f"alerts.update_interval_s: {self.update_interval_s} must be 0-86400"
            )
        if isinstance(self.end_after_normal, bool) or not 1 <= self.end_after_normal <= 100_000:
            raise PipelineConfigError(
                f"alerts.end_after_normal: {self.end_after_normal} must be 1-100000"
            )
        if not 0 < self.end_after_s <= 86400:
            raise PipelineConfigError(
                f"alerts.end_after_s: {self.end_after_s} must be > 0, <= 86400"
            )

    @property
    def episodes(self) -> bool:
        """Whether the policy raises episodes (else per-window alerts)."""
        return self.mode == "episodes"

    def severity(self, score: float, threshold: float) -> str:
        """``critical`` when score >= critical_ratio × threshold, else ``warning``."""
        return "critical" if score >= self.critical_ratio * threshold else "warning"

    # ------------------------------------------------------------------ episodes
    def step(
        self,
        entry: Mapping[str, Any] | None,
        device_id: str,
        seq: int,
        ts: float,
        score: float,
        threshold: float,
        anomalous: bool,
        model_version: str,
    ) -> tuple[dict[str, Any] | None, list[Event]]:
        """One window of a device through its episode state.

        Parameters
        ----------
        entry : mapping or None
            The device's state (``None``, or a state this function returned; anything else,
            e.g. a per-window cooldown state, counts as none).
        device_id, seq, ts, score, threshold, anomalous, model_version
            The window and its score.

        Returns
        -------
        (new entry, events)
            The state to store (``None``: leave the stored one as it is) and the episode
            records to emit, as ``(phase, episode state)``, in order. A window at or before
            the last window the state has seen (by ``(ts, seq)``: re-processed or late) changes
            nothing.
        """
        if not is_episode_entry(entry):
            entry = None
        elif (ts, seq) <= (entry["seen_ts"], entry["seen_seq"]):  # type: ignore[index]
            return None, []
        events: list[Event] = []
        closed: dict[str, Any] | None = None
        if entry is not None and entry["open"]:
            if ts - float(entry["last_ts"]) >= self.end_after_s:  # quiet too long: ended
                events.append(("end", entry))
                closed = closed_state(ts, seq)
            elif anomalous:
                return self._continue(entry, seq, ts, score, threshold)
            else:
                new = dict(entry)
                new.update(
                    windows_seen=int(entry["windows_seen"]) + 1,
                    normal_run=int(entry["normal_run"]) + 1,
                    seen_ts=ts,
                    seen_seq=seq,
                )
                if new["normal_run"] >= self.end_after_normal:
                    return closed_state(ts, seq), [("end", new)]
                return new, []
        if not anomalous:
            # A closed state just made (after an end) is stored; else nothing changes.
            return closed, events
        level = SEVERITIES.index(self.severity(score, threshold))
        new = {
            "open": True,
            "episode_id": self.episode_id(device_id, seq, model_version),
            "first_ts": ts,
            "last_ts": ts,
            "anomalous_windows": 1,
            "windows_seen": 1,
            "normal_run": 0,
            "peak_score": score,
            "level": level,
            "updated_ts": ts,
            "seen_ts": ts,
            "seen_seq": seq,
        }
        events.append(("start", new))
        return new, events

    def _continue(
        self, entry: Mapping[str, Any], seq: int, ts: float, score: float, threshold: float
    ) -> tuple[dict[str, Any], list[Event]]:
        """An anomalous window of an open episode: count it; update if due or escalated."""
        level = SEVERITIES.index(self.severity(score, threshold))
        new = dict(entry)
        new.update(
            last_ts=ts,
            anomalous_windows=int(entry["anomalous_windows"]) + 1,
            windows_seen=int(entry["windows_seen"]) + 1,
            normal_run=0,
            peak_score=max(float(entry["peak_score"]), score),
            seen_ts=ts,
            seen_seq=seq,
        )
        rises = level > int(entry["level"])
        if rises or ts - float(entry["updated_ts"]) >= self.update_interval_s:
            new["level"] = max(level, int(entry["level"]))
            new["updated_ts"] = ts
            return new, [("update", new)]
        return new, []

    def expire(
        self, entry: Mapping[str, Any] | None, now_ts: float
    ) -> tuple[dict[str, Any] | None, list[Event]]:
        """End an open episode whose device has been quiet for ``end_after_s`` by ``now_ts``.

        The hook for a timer (a silent device sends no next window to end its episode):
        the returned closed state keeps the last window seen, so a late or re-processed window
        cannot re-open the ended episode. ``(None, [])`` when there is nothing to end.
        """
        if not is_episode_entry(entry) or not entry["open"]:  # type: ignore[index]
            return None, []
        assert entry is not None
        if now_ts - float(entry["last_ts"]) < self.end_after_s:
            return None, []
        return closed_state(float(entry["seen_ts"]), int(entry["seen_seq"])), [("end", entry)]

    @staticmethod
    def episode_id(device_id: str, first_seq: int, model_version: str) -> str:
        """Deterministic episode id: UUIDv5 of (model version, device, first anomalous seq)."""
        return _uuid("episode", model_version, device_id, first_seq)

    @staticmethod
    def record_id(device_id: str, seq: int, phase: str, model_version: str) -> str:
        """``alert_id`` of an episode record: UUIDv5 of (model version, device, seq, phase)."""
        return _uuid(model_version, device_id, seq, phase)

    def episode_record(
        self,
        device_id: str,
        phase: str,
        episode: Mapping[str, Any],
        *,
        seq: int,
        ts: float,
        score: float,
        threshold: float,
        model_version: str,
        detected_at: float,
    ) -> dict[str, Any]:
        """The ``ecg.alerts`` record of one episode event (``alert.schema.json``).

        ``seq``, ``ts`` and ``score`` are those of the window that caused the event.
        """
        severity = SEVERITIES[int(episode["level"])]
        head = _record_head(
            alert_id=self.record_id(device_id, seq, phase, model_version),
            episode_id=episode["episode_id"],
            phase=phase,
            kind=KIND_PHYSIOLOGICAL,
            condition=CONDITION_ANOMALOUS_BEATS,
            priority=PRIORITY_OF_SEVERITY[severity],
            severity=severity,
            device_id=device_id,
            seq=seq,
            ts=ts,
            score=score,
            threshold=threshold,
            model_version=model_version,
            detected_at=detected_at,
        )
        return head | {
            "first_ts": episode["first_ts"],
            "last_ts": episode["last_ts"],
            "anomalous_windows": episode["anomalous_windows"],
            "windows_seen": episode["windows_seen"],
            "peak_score": episode["peak_score"],
        }

    # ------------------------------------------------------------------ per_window mode
    def decide(
        self,
        state: MutableMapping[str, Any],
        device_id: str,
        ts: float,
        score: float,
        threshold: float,
    ) -> str | None:
        """``per_window`` mode: the severity of the alert to raise for this anomaly, or ``None``.

        ``state`` maps device id to ``{"ts": last alert window ts, "level": severity index}``
        (a Faust table in the worker, a dict in tests) and is updated when an alert is raised.
        """
        severity = self.severity(score, threshold)
        level = SEVERITIES.index(severity)
        last = state.get(device_id)
        if last is None or is_episode_entry(last):  # none, or the other mode's state
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
        """``per_window`` mode: deterministic id, so a re-processed window yields the same id."""
        return _uuid(model_version, device_id, seq)


def stale_episode_id(device_id: str, last_seq: int, last_ts: float) -> str:
    """Deterministic ``feed_stale`` episode id: UUIDv5 of (device, the last window seen
    before the silence), so a worker that raises it again after a crash gives the same id."""
    return _uuid(CONDITION_FEED_STALE, device_id, last_seq, repr(float(last_ts)))


def stale_record(
    phase: str,
    device_id: str,
    episode: Mapping[str, Any],
    *,
    seq: int,
    ts: float,
    score: float | None,
    threshold: float,
    model_version: str,
    detected_at: float,
) -> dict[str, Any]:
    """The ``ecg.alerts`` record of a ``feed_stale`` episode event (``alert.schema.json``).

    ``seq``, ``ts`` and ``score`` are those of the device's last window before the silence
    (``start``) or of the window that ended it (``end``); ``episode`` is the stale episode
    (``pipeline.feeds``: ``episode_id``, ``first_ts``, ``last_seen_at``, ``silent_s``).
    """
    head = _record_head(
        alert_id=_uuid(CONDITION_FEED_STALE, device_id, seq, phase),
        episode_id=episode["episode_id"],
        phase=phase,
        kind=KIND_TECHNICAL,
        condition=CONDITION_FEED_STALE,
        priority=STALE_PRIORITY,
        severity=STALE_SEVERITY,
        device_id=device_id,
        seq=seq,
        ts=ts,
        score=score,
        threshold=threshold,
        model_version=model_version,
        detected_at=detected_at,
    )
    return head | {
        "first_ts": episode["first_ts"],
        "last_ts": ts,
        "anomalous_windows": 0,
        "windows_seen": 0 if phase == "start" else 1,
        "peak_score": None,
        "last_seen_at": episode["last_seen_at"],
        "silent_s": round(float(episode["silent_s"]), 3),
    }


def _record_head(**fields: Any) -> dict[str, Any]:
    """The fields every episode record starts with, physiological or technical: its ids,
    phase, kind, condition, priority, severity and the window that caused it (in the
    documented field order)."""
    return {"schema_version": SCHEMA_VERSION, **fields}


def closed_state(ts: float, seq: int) -> dict[str, Any]:
    """The state of a device whose episode ended at window (ts, seq)."""
    return {"open": False, "seen_ts": ts, "seen_seq": seq}


def state_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The episode state an episode record describes (the inverse of
    :meth:`AlertPolicy.episode_record`, for rebuilding state from the alerts topic).

    An ``end`` gives a closed state; a ``start`` / ``update`` the open episode as of that
    record's window (such records come from anomalous windows: no normal run yet). Either way
    the state remembers that window, so re-processing it changes nothing.

    Raises
    ------
    KeyError, TypeError, ValueError
        If a field the state needs is missing or of the wrong type.
    """
    ts, seq = float(record["ts"]), int(record["seq"])
    if record["phase"] == "end":
        return closed_state(ts, seq)
    return {
        "open": True,
        "episode_id": str(record["episode_id"]),
        "first_ts": float(record["first_ts"]),
        "last_ts": float(record["last_ts"]),
        "anomalous_windows": int(record["anomalous_windows"]),
        "windows_seen": int(record["windows_seen"]),
        "normal_run": 0,
        "peak_score": float(record["peak_score"]),
        "level": SEVERITIES.index(record["severity"]),
        "updated_ts": ts,
        "seen_ts": ts,
        "seen_seq": seq,
    }


def _uuid(*parts: object) -> str:
    """A deterministic id: UUIDv5 of ``ecgwatch:part:part:…`` (a re-processed window gets
    the same one)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, ":".join(["ecgwatch", *map(str, parts)])))
