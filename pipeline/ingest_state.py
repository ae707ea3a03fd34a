"""Per-device state of the beat-extraction stage: chunks in, beat windows and dead letters out.

No Kafka here (the adapter is :mod:`pipeline.ingest`); everything that decides what is produced
and which ``ecg.samples`` offsets may be committed is in :class:`IngestProcessor` and is
unit-tested in-process (``tests/unit/pipeline/test_ingest_state.py``).

* Each device has one *segment* at a time: a :class:`detector.beats.BeatExtractor` fed with its
  consecutive chunks. A gap in the chunk ``seq`` or a changed ``fs`` ends the segment (a
  dead-letter record says so; the chunk itself starts the next segment), and so does a ``seq``
  that went back while the chunk starts after the newest one ended (the device's counter was
  reset); a chunk whose ``seq`` is not newer than the newest one received and that starts
  before the newest one ended is dead-lettered and not used.
* Each beat becomes one window: ``seq`` is the device's beat counter, ``ts`` the beat's end
  time, from the ``ts`` of the chunk that holds the beat's last sample.
* **Commits**: a partition's offset may be committed up to the oldest chunk any of its devices
  still needs (:attr:`~detector.beats.BeatExtractor.first_needed`): a restarted stage consuming
  from there rebuilds every device's buffer and loses no beat.
* **Restarts**: beats re-extracted from chunks consumed again are recognised by their end time
  against each device's newest window (:meth:`IngestProcessor.restore`: from ``ecg.windows``,
  and for devices silent longer than that read reaches back, from the compacted state topic
  that :meth:`IngestProcessor.state_updates` feeds) and are not produced again; the next beat
  continues that window's ``seq``, so ``(device_id, seq)`` never names two beats.
* A device silent for ``idle_s`` has its signal dropped, so it does not hold its partition's
  commits; its beat counter is kept.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from detector.beats import Beat, BeatExtractor, BeatRecipe
from pipeline.codec import encode_json, encode_window_json
from pipeline.errors import InvalidMessageError
from pipeline.processor import InRecord, OutRecord, dead_letter
from pipeline.samples import (
    FS_CHANGED,
    SAMPLES_GAP,
    SAMPLES_OUT_OF_ORDER,
    SEQ_RESET,
    SampleChunk,
    decode_chunk,
)
from pipeline.settings import TopicNames

__all__ = ["IngestCounts", "IngestProcessor"]

log = logging.getLogger(__name__)


@dataclass
class IngestCounts:
    """What the stage did, cumulative (the metrics read these)."""

    chunks: int = 0
    samples: int = 0
    beats: int = 0
    #: Beats found again after a restart and not produced a second time.
    beats_skipped: int = 0
    #: Intervals between two peaks outside the recipe's RR range (no window).
    rejected_intervals: int = 0
    segments: int = 0
    #: Segments whose R waves pointed the other way than the model's (turned over to cut).
    segments_inverted: int = 0
    dropped_devices: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        """Count one dead-lettered chunk."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


@dataclass
class _Chunk:
    start: int  # the chunk's first sample in the segment
    ts: float
    offset: int


class _Segment:
    """One device's consecutive chunks at one ``fs`` and their extractor."""

    def __init__(self, fs: float, recipe: BeatRecipe) -> None:
        self.fs = fs
        self.extractor = BeatExtractor(fs, recipe)
        self.chunks: list[_Chunk] = []

    def feed(self, chunk: SampleChunk, offset: int) -> list[tuple[float, np.ndarray]]:
        """The ``(end_ts, window)`` of each beat the chunk completes."""
        self.chunks.append(_Chunk(self.extractor.received, chunk.ts, offset))
        rejected = self.extractor.rejected_intervals
        out = self._produced(lambda: self.extractor.feed(chunk.samples))
        #: Intervals the last :meth:`feed` rejected (outside the recipe's RR range).
        self.new_rejected = self.extractor.rejected_intervals - rejected
        self._trim()
        return out

    def finish(self) -> list[tuple[float, np.ndarray]]:
        """The segment ends: the ``(end_ts, window)`` of the beats its extractor still held
        back (:meth:`detector.beats.BeatExtractor.finish`)."""
        return self._produced(self.extractor.finish)

    def _produced(self, extract: Callable[[], list[Beat]]) -> list[tuple[float, np.ndarray]]:
        undecided = not self.extractor.polarity_decided
        beats = extract()
        #: Whether the last :meth:`feed` or :meth:`finish` decided to turn the segment over.
        self.turned_over = undecided and self.extractor.polarity_decided and self.extractor.inverted
        return [(self._time_of(b.end), b.window) for b in beats]

    def _time_of(self, position: float) -> float:
        # The ts of the chunk holding the position: the device's clock, not a sample count
        # from the segment's start, so a slowly drifting clock does not shift beat times.
        c = self.chunks[self._holding(int(position))]
        return c.ts + (position - c.start) / self.fs

    def _trim(self) -> None:
        needed = self.extractor.first_needed
        keep = self._holding(needed)
        if keep:
            del self.chunks[:keep]

    def _holding(self, position: int) -> int:
        """Index of the chunk that holds sample ``position``."""
        return max(0, bisect.bisect_right(self.chunks, position, key=lambda c: c.start) - 1)

    @property
    def oldest_offset(self) -> int:
        """Offset of the oldest chunk a restart must consume again."""
        return self.chunks[0].offset


@dataclass
class _Device:
    partition: int
    newest_seq: int
    last_seen: float
    #: None once the device was idle for ``idle_s``: its signal is dropped, its counter kept.
    segment: _Segment | None
    next_beat: int = 0
    #: End time of the newest beat already in ``ecg.windows`` (restart dedupe); None: none.
    done_until: float | None = None
    #: When the newest chunk's last sample ended (its ``ts`` + duration).
    newest_end: float = -math.inf
    #: ``ts`` of the newest window produced (with ``next_beat - 1``, what the state records).
    last_ts: float | None = None
    #: Whether the counter moved since the last :meth:`IngestProcessor.state_updates`.
    dirty: bool = False


class IngestProcessor:
    """Turns consumed ``ecg.samples`` records into window and dead-letter records.

    Parameters
    ----------
    recipe : BeatRecipe
        How beats are cut (the served model's ``detector.json``).
    topics : TopicNames
        ``windows`` for beats, ``samples_dlq`` for dead letters.
    max_bytes : int
        Larger chunk values are dead-lettered as ``too_large``.
    idle_s : float
        A device silent this long (``clock`` seconds) is forgotten.
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        recipe: BeatRecipe,
        topics: TopicNames,
        max_bytes: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recipe = recipe
        self.topics = topics
        self.max_bytes = max_bytes
        self.idle_s = idle_s
        self.clock = clock
        self.counts = IngestCounts()
        self.devices: dict[str, _Device] = {}
        #: Per device: (seq, ts) of its newest window in ``ecg.windows`` (see :meth:`restore`).
        self._restored: dict[str, tuple[int, float]] = {}
        # Beats ending this close to a restored window's end are that window found again.
        self._same_beat_s = recipe.min_rr_s / 2
        #: Windows of segments ended by :meth:`drop_idle`, for :meth:`take_pending`.
        self._pending: list[OutRecord] = []

    # ------------------------------------------------------------------ consuming
    def process(self, records: Sequence[InRecord]) -> list[OutRecord]:
        """Decode and feed ``records`` (in consumed order); return what to produce."""
        out: list[OutRecord] = []
        now = self.clock()
        for rec in records:
            try:
                chunk = decode_chunk(rec.value, rec.headers, self.max_bytes)
            except InvalidMessageError as exc:
                out.append(self._dead_letter(rec, exc.reason, exc.detail))
                continue
            self._feed(rec, chunk, now, out)
        return out

    def _feed(self, rec: InRecord, chunk: SampleChunk, now: float, out: list[OutRecord]) -> None:
        dev = self.devices.get(chunk.device_id)
        if dev is None:
            dev = self._new_device(rec, chunk, now)
        elif chunk.seq <= dev.newest_seq and chunk.ts >= dev.newest_end - 0.5 / chunk.fs:
            out.append(
                self._dead_letter(
                    rec,
                    SEQ_RESET,
                    f"seq: {chunk.seq} after {dev.newest_seq}, but the chunk starts at "
                    f"{chunk.ts:.3f}, after the newest chunk of {chunk.device_id!r} ended "
                    f"({dev.newest_end:.3f}): the device's counter was reset; chunk used: a new "
                    "segment starts here",
                )
            )
            self._restart(chunk.device_id, dev, chunk.fs, out)
        elif chunk.seq <= dev.newest_seq:
            out.append(
                self._dead_letter(
                    rec,
                    SAMPLES_OUT_OF_ORDER,
                    f"seq: {chunk.seq} is not newer than {dev.newest_seq}, the newest chunk "
                    f"received from {chunk.device_id!r}; chunk not used (send each chunk once, "
                    "in order, keyed by device id)",
                )
            )
            return
        elif dev.segment is None:
            self._restart(chunk.device_id, dev, chunk.fs, out)
        elif chunk.fs != dev.segment.fs:
            out.append(
                self._dead_letter(
                    rec,
                    FS_CHANGED,
                    f"fs: {chunk.fs:g} Hz, but {chunk.device_id!r} was sending at "
                    f"{dev.segment.fs:g} Hz; chunk used: a new segment starts here (the beat "
                    "across the change is lost)",
                )
            )
            self._restart(chunk.device_id, dev, chunk.fs, out)
        elif chunk.seq != dev.newest_seq + 1:
            out.append(
                self._dead_letter(
                    rec,
                    SAMPLES_GAP,
                    f"seq: {chunk.seq} follows {dev.newest_seq}: chunks "
                    f"{dev.newest_seq + 1}..{chunk.seq - 1} of {chunk.device_id!r} are missing; "
                    "chunk used: a new segment starts here (beats across the gap are lost)",
                )
            )
            self._restart(chunk.device_id, dev, chunk.fs, out)
        dev.newest_seq = chunk.seq
        dev.newest_end = chunk.ts + chunk.samples.size / chunk.fs
        dev.last_seen = now
        dev.partition = rec.partition
        self.counts.chunks += 1
        self.counts.samples += int(chunk.samples.size)
        segment = dev.segment
        assert segment is not None
        self._produce(chunk.device_id, dev, segment, segment.feed(chunk, rec.offset), out)
        self.counts.rejected_intervals += segment.new_rejected

    def _produce(
        self,
        device_id: str,
        dev: _Device,
        segment: _Segment,
        beats: list[tuple[float, np.ndarray]],
        out: list[OutRecord],
    ) -> None:
        """The windows of a segment's beats, and its polarity decision if it just made one."""
        for end_ts, window in beats:
            self._beat(device_id, dev, end_ts, window, out)
        if segment.turned_over:
            self.counts.segments_inverted += 1
            # Said once per segment: a reversed lead or electrode swap is worth knowing, and
            # the windows are turned over, so scoring goes on.
            log.warning(
                "device %r: its R waves point the other way than the model's beats "
                "(beat_recipe.invert %s); the segment is turned over before it is cut",
                device_id,
                self.recipe.invert,
            )

    def _new_device(self, rec: InRecord, chunk: SampleChunk, now: float) -> _Device:
        if rec.key != chunk.device_id.encode():
            # Not refused (one stage on one partition copes), but said once per device: with
            # more partitions its chunks spread over stage instances (gaps, lost beats).
            log.warning(
                "ecg.samples chunk of device %r has key %r: the key must be the device id "
                "(docs/messages.md), or its chunks spread over partitions and stages",
                chunk.device_id,
                rec.key,
            )
        dev = _Device(rec.partition, chunk.seq - 1, now, _Segment(chunk.fs, self.recipe))
        self.counts.segments += 1
        restored = self._restored.pop(chunk.device_id, None)
        if restored is not None:
            dev.next_beat, dev.done_until = restored[0] + 1, restored[1]
        self.devices[chunk.device_id] = dev
        return dev

    def _restart(self, device_id: str, dev: _Device, fs: float, out: list[OutRecord]) -> None:
        self._end_segment(device_id, dev, out)
        dev.segment = _Segment(fs, self.recipe)
        self.counts.segments += 1

    def _end_segment(self, device_id: str, dev: _Device, out: list[OutRecord]) -> None:
        """Produce the beats the device's segment still held back, and drop the segment."""
        if dev.segment is not None:
            self._produce(device_id, dev, dev.segment, dev.segment.finish(), out)
        dev.segment = None

    def _beat(
        self, device_id: str, dev: _Device, end_ts: float, window: np.ndarray, out: list[OutRecord]
    ) -> None:
        if dev.done_until is not None:
            if end_ts <= dev.done_until + self._same_beat_s:
                self.counts.beats_skipped += 1
                return
            dev.done_until = None  # past the restored window: every later beat is new
        value = encode_window_json(device_id, dev.next_beat, end_ts, window)
        out.append(OutRecord(self.topics.windows, device_id.encode("utf-8"), value))
        dev.next_beat += 1
        dev.last_ts, dev.dirty = end_ts, True
        self.counts.beats += 1

    def _dead_letter(self, rec: InRecord, reason: str, detail: str) -> OutRecord:
        self.counts.reject(reason)
        return dead_letter(rec, reason, detail, self.topics.samples_dlq, time.time())

    # ------------------------------------------------------------------ commits and state
    def committable(self, consumed: Mapping[int, int]) -> dict[int, int]:
        """Offsets that may be committed once everything produced so far is acknowledged.

        Parameters
        ----------
        consumed : mapping of partition -> int
            The offset after the last record consumed from each partition.

        Returns
        -------
        dict of partition -> int
            Per partition, the oldest chunk one of its devices still needs, or ``consumed``.
        """
        out = dict(consumed)
        for dev in self.devices.values():
            if dev.segment is not None and dev.partition in out:
                out[dev.partition] = min(out[dev.partition], dev.segment.oldest_offset)
        return out

    def state_updates(self) -> list[OutRecord]:
        """One ``ingest_state`` record per device whose beat counter moved since the last call:
        ``{"device_id", "seq", "ts"}`` of its newest window, keyed by the device id (the
        topic is compacted: the newest record per device is what a restart reads back)."""
        out = []
        for device_id, dev in self.devices.items():
            if dev.dirty and dev.last_ts is not None:
                value = encode_json(
                    {"device_id": device_id, "seq": dev.next_beat - 1, "ts": dev.last_ts}
                )
                out.append(OutRecord(self.topics.ingest_state, device_id.encode("utf-8"), value))
                dev.dirty = False
        return out

    def restore(self, newest: Mapping[str, tuple[int, float]]) -> None:
        """Remember each device's newest window already produced (``seq``, ``ts``).

        Called on a partition assignment, before consuming (with what ``ecg.windows`` and the
        state topic hold; of several, the highest ``seq`` counts): beats that end no later
        than the window are not produced again, and the next beat gets the following ``seq``.
        """
        for device_id, (seq, ts) in newest.items():
            known = self._restored.get(device_id)
            if device_id not in self.devices and (known is None or seq > known[0]):
                self._restored[device_id] = (seq, ts)

    def revoke(self, partitions: Iterable[int]) -> int:
        """Forget the devices of ``partitions`` (another member consumes them now)."""
        gone = set(partitions)
        drop = [d for d, dev in self.devices.items() if dev.partition in gone]
        for d in drop:
            del self.devices[d]
        self._restored.clear()
        return len(drop)

    def drop_idle(self) -> int:
        """Drop the signal of devices silent for ``idle_s``; returns how many.

        Their beat counter is kept, so a device that sends again continues its ``seq``
        (``(device_id, seq)`` identifies a window downstream).
        """
        limit = self.clock() - self.idle_s
        idle = [
            (device_id, dev)
            for device_id, dev in self.devices.items()
            if dev.segment is not None and dev.last_seen < limit
        ]
        for device_id, dev in idle:
            self._end_segment(device_id, dev, self._pending)
        self.counts.dropped_devices += len(idle)
        return len(idle)

    def take_pending(self) -> list[OutRecord]:
        """The windows of segments :meth:`drop_idle` ended (beats held back until then), to be
        produced and acknowledged before the next commit; cleared by the call."""
        out, self._pending = self._pending, []
        return out
