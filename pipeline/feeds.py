"""Feed watch: which devices this worker owns, when each last sent, and ``feed_stale`` alerts.

A device that has sent windows and then sends none for ``alerts.stale_after_s`` seconds of
wall time gets a *technical* alert episode (``kind: technical``, ``condition: feed_stale``):
a ``start`` from a timer (the engine calls :meth:`FeedWatch.due` every second), and an
``end`` with its next window (:meth:`FeedWatch.observe`, from the batch's alert step).

What a worker knows, and why a restart or rebalance raises no storm of stale alerts:

* a device is *tracked* only once this process has consumed one of its windows since it took
  over the device's partition; "last seen" is this process's wall clock at that moment (no
  producer clock is trusted). So a device the worker only just took over is never stale
  before it has had ``stale_after_s`` to send its next window;
* a partition the worker is behind on (its lag would take more than ``pipeline.lag.BEHIND_S``
  to consume at the rate it has been consuming it, or it makes no progress) is not judged: its
  devices' newer windows may be waiting in the topic (a stuck or slow pipeline is the
  pipeline-health alerts' business, not a silent feed);
* open ``feed_stale`` episodes are restored from the alerts topic on assignment
  (:func:`pipeline.alert_state.fold_stale`), so a device that stays silent across a restart
  gets no second ``start``, and its next window ends the episode on whichever worker owns it.

* a device that fell silent shortly *before* a restart or rebalance is still known: on
  assignment the engines seed the watch with each device's newest window before the committed
  offset (:mod:`pipeline.feed_restore`; "last seen" is then the message's Kafka timestamp), so
  it is flagged ``stale_after_s`` after it was sent, once the worker has caught up.

The state is per process, in memory, for both engines: a Faust table can be written only from
within a stream event (its changelog goes to the event's partition), and a timer has none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import PipelineConfigError
from pipeline.policy import stale_episode_id

__all__ = ["FEED_CHECK_INTERVAL_S", "DeviceFeed", "FeedWatch", "StaleEvent", "check_stale_after"]

#: How often both engines look for silent feeds: a ``feed_stale`` start comes at most this
#: much after ``alerts.stale_after_s``.
FEED_CHECK_INTERVAL_S = 1.0


def check_stale_after(value: float) -> None:
    """Validate ``alerts.stale_after_s`` (0 turns stale-feed alerts off; the check runs every
    :data:`FEED_CHECK_INTERVAL_S`, so that is its resolution).

    Raises
    ------
    PipelineConfigError
        Naming the setting, its value and the allowed range.
    """
    if isinstance(value, bool) or not (0 <= value <= 86400):
        raise PipelineConfigError(
            f"alerts.stale_after_s: {value!r} is not allowed; must be 0 (off) or a number of "
            "seconds up to 86400"
        )


@dataclass
class DeviceFeed:
    """What this worker knows of one device's feed."""

    partition: int
    #: Wall time (epoch seconds) this process consumed the device's newest window.
    seen_at: float
    seq: int
    ts: float
    #: Score of the newest window (``None``: it got none, e.g. dead-lettered as flat).
    score: float | None
    anomaly: bool
    #: The open ``feed_stale`` episode (see :meth:`FeedWatch._stale_episode`), or ``None``.
    stale: dict[str, Any] | None = None


#: One ``feed_stale`` record to emit: (phase, device id, episode, the device's feed as of it).
StaleEvent = tuple[str, str, Mapping[str, Any], DeviceFeed]


class FeedWatch:
    """Per-device last-seen bookkeeping of one worker process, and its stale-feed episodes.

    Written by the event loop; :meth:`snapshot` may be called from the HTTP thread (a lock
    guards the few places that change the device table's shape).

    Parameters
    ----------
    stale_after_s : float
        ``alerts.stale_after_s``; 0 disables stale-feed alerts (devices are still tracked).
    clock : callable
        Wall clock, epoch seconds; injectable for tests.
    """

    def __init__(self, stale_after_s: float = 10.0, clock: Callable[[], float] = time.time):
        check_stale_after(stale_after_s)
        self.stale_after_s = float(stale_after_s)
        self.clock = clock
        self.devices: dict[str, DeviceFeed] = {}
        #: Open stale episodes restored from the alerts topic, of devices not seen since.
        self.restored: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ ownership
    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget the devices of partitions another worker owns now."""
        gone = set(partitions)
        with self._lock:
            for device in [d for d, f in self.devices.items() if f.partition in gone]:
                del self.devices[device]

    def restore(self, open_stale: Mapping[str, Mapping[str, Any]]) -> list[StaleEvent]:
        """Remember open ``feed_stale`` episodes read back from the alerts topic.

        For a device not tracked yet, the restored episode waits for its next window, which
        ends it. A device already tracked has sent since the assignment (an engine that does
        not hold its first batches back for the restore, Faust): its restored episode ends
        now, and those ``end`` events are returned for the caller to deliver.
        """
        ended: list[StaleEvent] = []
        with self._lock:
            self.restored = {}
            for device, episode in open_stale.items():
                feed = self.devices.get(device)
                if feed is None:
                    self.restored[device] = dict(episode)
                elif feed.stale is None or feed.stale["episode_id"] != episode["episode_id"]:
                    silent = max(0.0, feed.seen_at - float(episode["last_seen_at"]))
                    ended.append(("end", device, dict(episode, silent_s=silent), feed))
        return ended

    def seed(self, device_id: str, partition: int, seen_at: float, seq: int, ts: float) -> bool:
        """Track a device known only from a window processed before this assignment
        (``pipeline.feed_restore``): ``seen_at`` is when it was sent. A device already
        tracked is left as it is; a restored open stale episode stays open on it. Returns
        whether the device was added."""
        with self._lock:
            if device_id in self.devices:
                return False
            feed = DeviceFeed(partition, min(seen_at, self.clock()), seq, ts, None, False)
            feed.stale = self.restored.pop(device_id, None)
            self.devices[device_id] = feed
        return True

    # ------------------------------------------------------------------ windows and timer
    def observe(
        self,
        device_id: Sequence[str],
        seq: Sequence[int],
        ts: Sequence[float],
        score: Sequence[float | None],
        anomaly: Sequence[bool],
        partition: Sequence[int],
        now: float | None = None,
    ) -> list[StaleEvent]:
        """Record a batch's windows (aligned sequences); the ``end`` of every stale episode
        they close.

        Only each device's newest window of the batch (by ``(ts, seq)``) is kept; a window
        older than the one already recorded still proves the feed alive (``seen_at``).
        """
        now = self.clock() if now is None else now
        newest: dict[str, int] = {}
        for i, d in enumerate(device_id):
            j = newest.get(d)
            if j is None or (ts[i], seq[i]) >= (ts[j], seq[j]):
                newest[d] = i
        events: list[StaleEvent] = []
        for d, i in newest.items():
            feed = self.devices.get(d)
            if feed is None:
                feed = DeviceFeed(partition[i], now, seq[i], ts[i], score[i], anomaly[i])
                feed.stale = self.restored.pop(d, None)
                with self._lock:
                    self.devices[d] = feed
            else:
                feed.seen_at, feed.partition = now, partition[i]
                if (ts[i], seq[i]) >= (feed.ts, feed.seq):
                    feed.seq, feed.ts, feed.score, feed.anomaly = (
                        seq[i],
                        ts[i],
                        score[i],
                        anomaly[i],
                    )
            if feed.stale is not None:
                episode, feed.stale = feed.stale, None
                ended = dict(episode, silent_s=max(0.0, now - float(episode["last_seen_at"])))
                events.append(("end", d, ended, feed))
        return events

    def due(self, lagging: Iterable[int] = (), now: float | None = None) -> list[StaleEvent]:
        """The ``start`` of a stale episode for every tracked device silent for
        ``stale_after_s`` (none when disabled); partitions in ``lagging`` are not judged."""
        if not self.stale_after_s:
            return []
        now = self.clock() if now is None else now
        skip = set(lagging)
        events: list[StaleEvent] = []
        for d, feed in list(self.devices.items()):
            if feed.stale is not None or feed.partition in skip:
                continue
            if now - feed.seen_at >= self.stale_after_s:
                feed.stale = self._stale_episode(d, feed, now)
                events.append(("start", d, feed.stale, feed))
        return events

    @staticmethod
    def _stale_episode(device_id: str, feed: DeviceFeed, now: float) -> dict[str, Any]:
        return {
            "episode_id": stale_episode_id(device_id, feed.seq, feed.ts),
            "last_seen_at": feed.seen_at,
            "first_ts": feed.ts,
            "started_at": now,
            "silent_s": now - feed.seen_at,
        }

    # ------------------------------------------------------------------ views
    def counts(self) -> tuple[int, int]:
        """(active, stale) tracked devices."""
        with self._lock:
            feeds = list(self.devices.values())
        stale = sum(1 for f in feeds if f.stale is not None)
        return len(feeds) - stale, stale

    def snapshot(self) -> list[tuple[str, DeviceFeed]]:
        """The tracked devices, sorted by id (a copy; safe from another thread)."""
        with self._lock:
            items = list(self.devices.items())
        return sorted(items)
