"""Transport-agnostic micro-batch logic: raw messages in, score/alert/dead-letter records out.

Both engines (``pipeline.engine``, the default, and the Faust agent in ``pipeline.app``) feed
it batches; tests feed it lists. ``compute`` is pure
CPU work (decode, validate, one detector call, encode) and runs in a worker thread so the
event loop stays free; ``alerts`` touches the per-device alert state and runs on the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from detector import InvalidWindowError
from detector.drift import INPUT_STATISTICS
from detector.normalise import flat_detail
from detector.validation import FLAT_WINDOW
from pipeline.codec import SCORING_ERROR, DecodedBatch, dlq_record, encode_json
from pipeline.decode import decode_records
from pipeline.drift import DriftMonitor
from pipeline.feeds import FeedWatch, StaleEvent
from pipeline.metrics import PipelineMetrics, observe_many
from pipeline.policy import KIND_PHYSIOLOGICAL, KIND_TECHNICAL, AlertPolicy, stale_record
from pipeline.scorer import Scorer
from pipeline.settings import TopicNames

__all__ = [
    "BatchResult",
    "InRecord",
    "OutRecord",
    "ScoredWindows",
    "WindowProcessor",
    "dead_letter",
]

log = logging.getLogger(__name__)


class InRecord(NamedTuple):
    """One consumed Kafka message (aiokafka's ``ConsumerRecord`` has the same attributes)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] | None = None


class OutRecord(NamedTuple):
    """One record to produce (a named tuple: built once per window, so it must be cheap)."""

    topic: str
    key: bytes | None
    value: bytes


def dead_letter(rec: InRecord, reason: str, detail: str, topic: str, now: float) -> OutRecord:
    """Log one rejected message (topic/partition/offset, reason, detail) and return its
    dead-letter record for ``topic`` (format: ``pipeline.codec.dlq_record``)."""
    log.warning("rejected %s/%d@%d: %s: %s", rec.topic, rec.partition, rec.offset, reason, detail)
    record = dlq_record(
        reason=reason,
        detail=detail,
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        key=rec.key,
        value=rec.value,
        rejected_at=now,
    )
    return OutRecord(topic, rec.key, encode_json(record))


class ScoredWindows(NamedTuple):
    """Every scored window of a batch, as aligned per-batch sequences (no per-window object):
    what the episode policy needs to see normal windows too."""

    #: Position of each window in the batch.
    pos: Sequence[int]
    device_id: Sequence[str]
    seq: Sequence[int]
    ts: Sequence[float]
    score: Sequence[float]
    #: ``score > threshold``.
    anomaly: Sequence[bool]
    #: Indices (into the sequences above) of windows that got no score record (dead-lettered).
    skip: Mapping[int, Any]
    #: Input partition of each window (which partition's devices it proves alive).
    partition: Sequence[int] = ()


@dataclass
class BatchResult:
    """Outputs of one micro-batch."""

    scores: list[OutRecord] = field(default_factory=list)
    dlq: list[OutRecord] = field(default_factory=list)
    #: (position in the batch, device_id, seq, ts, score) of each anomalous window.
    anomalies: list[tuple[int, str, int, float, float]] = field(default_factory=list)
    window_ts: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: Every window that got a score record (``None`` when none did).
    scored: ScoredWindows | None = None
    n_in: int = 0
    #: Reason code of each dead letter, counted into the metrics once the batch is done.
    reject_reasons: list[str] = field(default_factory=list)
    #: The model that scored the batch (its version and threshold are in every record).
    model: Scorer | None = None


class WindowProcessor:
    """Score micro-batches of ``ecg.windows`` messages with one artifact.

    Parameters
    ----------
    artifact : Artifact
        Verified model + threshold.
    metrics : PipelineMetrics
        Where counts and distributions go.
    topics : TopicNames
        Output topic names.
    policy : AlertPolicy
        Alert policy (episodes, or per-window alerts with a cooldown).
    max_message_bytes : int
        Messages above this are dead-lettered as ``too_large``.
    clock : callable
        Wall clock (epoch seconds); injectable for tests.
    feeds : FeedWatch, optional
        The devices' last-seen bookkeeping and stale-feed alerts (default: one with
        ``alerts.stale_after_s`` = 10 s on ``clock``).
    drift_window : int
        ``worker.drift_window``: newest windows the drift gauges compare with the served
        model's reference (:mod:`pipeline.drift`).
    shadow : Scorer, optional
        ``worker.shadow_model``: a candidate that scores every batch a second time; its score
        and decision go into fields of the score record of their own (``shadow_*``) and into
        the ``ecg_shadow_*`` metrics, never into alerts.
    """

    def __init__(
        self,
        artifact: Scorer,
        metrics: PipelineMetrics,
        topics: TopicNames,
        policy: AlertPolicy,
        max_message_bytes: int,
        clock: Callable[[], float] = time.time,
        feeds: FeedWatch | None = None,
        drift_window: int = 1000,
        shadow: Scorer | None = None,
    ) -> None:
        #: The model scoring the next batch. One reference: a roll-out replaces it between
        #: batches (each batch takes it once, at its start, and names it in its records).
        self.model: Scorer = artifact
        self.feeds = feeds if feeds is not None else FeedWatch(clock=clock)
        #: The engine's per-device alert state (a dict, or the Faust table), registered by the
        #: engine so the timer's gauges and ``/devices`` can read open episodes.
        self.alert_state: Mapping[str, Any] = {}
        self.metrics = metrics
        self.topics = topics
        self.policy = policy
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self.drift_window = drift_window
        self.shadow = shadow
        # (the model it belongs to, its monitor or None): rebuilt when the model changes.
        self._drift: tuple[Any, DriftMonitor | None] = (None, None)

    @property
    def artifact(self) -> Scorer:
        """The model now served (:attr:`model`)."""
        return self.model

    @property
    def threshold(self) -> float:
        """Decision threshold of the model now served."""
        return float(self.model.threshold.value)

    @property
    def version(self) -> str:
        """Version of the model now served."""
        return self.model.version

    # ------------------------------------------------------------ CPU part (thread)
    def compute(self, records: Sequence[InRecord]) -> BatchResult:
        """Decode, validate, score and encode one batch. Never raises for bad input."""
        model = self.model  # once: the whole batch is scored and named by this one
        result = BatchResult(n_in=len(records), model=model)
        decoded = decode_records(records, self.max_message_bytes)
        now = self.clock()
        for pos, reason, detail in decoded.rejected:
            self._reject(result, records[pos], reason, detail, now)
        if len(decoded.index) == 0:
            self._count_rejects(result)
            return result
        scores, anomalous, failed = self._score(model, decoded.windows)
        shadow = self._score_shadow(decoded.windows, scores, anomalous, failed)
        self._score_records(result, records, decoded, scores, anomalous, failed, shadow)
        self._count_scored(result, decoded, scores, failed)
        self._count_rejects(result)
        return result

    def _score_records(
        self,
        result: BatchResult,
        records: Sequence[InRecord],
        decoded: DecodedBatch,
        scores: np.ndarray,
        anomalous: np.ndarray,
        failed: dict[int, tuple[str, str]],
        shadow: tuple[str, list[float], list[bool]] | None = None,
    ) -> None:
        """One score record per scored window; windows without a score, or whose record
        cannot be encoded (added to ``failed``), are dead-lettered. ``shadow``: the shadow
        model's (version, scores, decisions), added as ``shadow_*`` fields."""
        assert result.model is not None
        now = self.clock()
        # The one per-window loop left: one dict, one orjson call and one tuple per score
        # record. Everything else (threshold test, metrics) is done per batch.
        model = result.model
        topic, threshold, version = self.topics.scores, float(model.threshold.value), model.version
        append, anomalies = result.scores.append, result.anomalies
        index = decoded.index
        score_list = scores.tolist()
        anomaly_list = anomalous.tolist()
        result.scored = ScoredWindows(
            index,
            decoded.device_id,
            decoded.seq,
            decoded.ts,
            score_list,
            anomaly_list,
            failed,
            [records[pos].partition for pos in index],
        )
        # The first six fields of ScoredWindows: pos, device_id, seq, ts, score, anomaly.
        for i, (pos, device_id, seq, ts, score, anomaly) in enumerate(
            zip(*result.scored[:6], strict=True)
        ):
            if failed and i in failed:
                self._reject(result, records[pos], *failed[i], now)
                continue
            record = {
                "device_id": device_id,
                "seq": seq,
                "ts": ts,
                "score": score,
                "threshold": threshold,
                "anomaly": anomaly,
                "model_version": version,
                "scored_at": now,
            }
            if shadow is not None:
                record["shadow_model_version"] = shadow[0]
                record["shadow_score"] = shadow[1][i]
                record["shadow_anomaly"] = shadow[2][i]
            try:
                value = encode_json(record)
            except Exception as exc:  # one unencodable window must not fail the whole batch
                failed[i] = (SCORING_ERROR, f"cannot encode its score: {exc}")
                self._reject(result, records[pos], *failed[i], now)
                continue
            # Keyed by the window's device, not the input's key: an unkeyed (or differently
            # keyed) producer must not yield scores a subscriber cannot partition by device.
            append(OutRecord(topic, device_id.encode(), value))
            if anomaly:
                anomalies.append((pos, device_id, seq, ts, score))

    def _count_scored(
        self,
        result: BatchResult,
        decoded: DecodedBatch,
        scores: np.ndarray,
        failed: dict[int, tuple[str, str]],
    ) -> None:
        """Per-batch metrics of the windows that got a score record; keeps their ``ts`` for
        the latency observed once the batch is delivered."""
        m = self.metrics
        good = np.ones(len(scores), dtype=bool)
        if failed:
            good[list(failed)] = False
        result.window_ts = np.asarray(decoded.ts, dtype=np.float64)[good]
        m.windows.labels("scored").inc(int(good.sum()))
        m.anomalous.inc(len(result.anomalies))
        observe_many(m.reconstruction_error, scores[good])
        if failed:
            self._observe_drift(result.model, scores[good], decoded.windows[good])
        else:  # the common case: no copy of the batch
            self._observe_drift(result.model, scores, decoded.windows)

    def _observe_drift(self, model: Any, scores: np.ndarray, windows: np.ndarray) -> None:
        """Feed the served model's drift monitor; export its PSI values."""
        owner, monitor = self._drift
        if owner is not model:  # a roll-out: start again against the new reference
            reference = getattr(model, "drift_reference", None)
            monitor = DriftMonitor(reference, self.drift_window) if reference else None
            self._drift = (model, monitor)
        m = self.metrics
        if monitor is None:
            m.score_drift.set(float("nan"))
            for statistic in INPUT_STATISTICS:
                m.input_drift.labels(statistic).set(float("nan"))
            return
        monitor.add(scores, windows)
        m.score_drift.set(monitor.score_drift())
        for statistic, value in monitor.input_drift().items():
            m.input_drift.labels(statistic).set(value)

    def fail_batch(self, records: Sequence[InRecord], detail: str) -> BatchResult:
        """Dead-letter a whole batch (last resort when :meth:`compute` itself failed)."""
        result = BatchResult(n_in=len(records))
        now = self.clock()
        for rec in records:
            self._reject(result, rec, SCORING_ERROR, detail, now)
        self._count_rejects(result)
        return result

    def _count_rejects(self, result: BatchResult) -> None:
        # Counted once per finished batch, not in _reject: when ``compute`` raises half-way,
        # ``fail_batch`` dead-letters the whole batch again and must not count twice.
        if not result.reject_reasons:
            return
        self.metrics.windows.labels("rejected").inc(len(result.reject_reasons))
        for reason in set(result.reject_reasons):
            self.metrics.rejected.labels(reason).inc(result.reject_reasons.count(reason))

    def _score_shadow(
        self,
        windows: np.ndarray,
        scores: np.ndarray,
        anomalous: np.ndarray,
        failed: Mapping[int, Any],
    ) -> tuple[str, list[float], list[bool]] | None:
        """Score the batch with the shadow model (if any) and compare it with the served one.

        A shadow that fails costs its fields on this batch's records, never a served score.
        """
        shadow = self.shadow
        if shadow is None:
            return None
        keep = np.ones(len(windows), dtype=bool)
        if failed:
            keep[list(failed)] = False
        out_scores = np.zeros(len(windows), dtype=np.float32)
        out_anomalous = np.zeros(len(windows), dtype=bool)
        m = self.metrics
        try:
            with m.shadow_duration.time():
                out_scores[keep], out_anomalous[keep] = shadow.predict(windows[keep])
        except Exception as exc:
            log.warning("shadow model %s failed on a batch: %r", shadow.version, exc)
            m.shadow_windows.labels("failed").inc(int(keep.sum()))
            return None
        agree = int((out_anomalous[keep] == anomalous[keep]).sum())
        m.shadow_windows.labels("agree").inc(agree)
        m.shadow_windows.labels("disagree").inc(int(keep.sum()) - agree)
        served = scores[keep].astype(np.float64)
        ratio = out_scores[keep][served > 0] / served[served > 0]
        observe_many(m.shadow_score_ratio, ratio)
        return shadow.version, out_scores.tolist(), out_anomalous.tolist()

    def _score(
        self, model: Scorer, windows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[str, str]]]:
        """One detector call for the batch; per-window retry only if the batch call fails.

        Returns the scores, the model's decisions and, for each window that got none, its
        (reason, detail): flat windows (``flat_window``, screened by the detector before
        scoring) and windows the detector failed on (``scoring_error``).
        """
        t0 = time.perf_counter()
        failed: dict[int, tuple[str, str]] = {}
        scores = np.zeros(len(windows), dtype=np.float32)
        anomalous = np.zeros(len(windows), dtype=bool)
        flat = np.zeros(len(windows), dtype=bool)
        try:
            flat = model.flat(windows)
            for i in np.flatnonzero(flat).tolist():
                failed[i] = (FLAT_WINDOW, flat_detail(windows[i]))
            keep = ~flat
            scores[keep], anomalous[keep] = model.predict(windows[keep])
        except Exception as exc:  # a detector bug must not kill the agent or lose windows
            log.exception("batch scoring failed (%s); retrying window by window", exc)
            for i in range(len(windows)):
                if i in failed:
                    continue
                try:
                    one_score, one_anomalous = model.predict(windows[i : i + 1])
                    scores[i], anomalous[i] = one_score[0], one_anomalous[0]
                except InvalidWindowError as bad:
                    failed[i] = (bad.reason, str(bad))
                except Exception as one:
                    failed[i] = (SCORING_ERROR, f"the detector failed on this window: {one}")
        self.metrics.scoring_duration.observe(time.perf_counter() - t0)
        self.metrics.batch_size.observe(len(windows) - int(flat.sum()))  # windows scored
        return scores, anomalous, failed

    def _reject(
        self, result: BatchResult, rec: InRecord, reason: str, detail: str, now: float
    ) -> None:
        result.dlq.append(dead_letter(rec, reason, detail, self.topics.dlq, now))
        result.reject_reasons.append(reason)

    # ------------------------------------------------------------ loop part
    def alerts(
        self,
        result: BatchResult,
        state: MutableMapping[str, Any],
        enter: Callable[[int], None] | None = None,
    ) -> list[OutRecord]:
        """Apply the alert policy to the batch (updates ``state``, per device).

        ``alerts.mode: episodes`` (default): every anomalous window, and every window of a
        device with an open episode, goes through :meth:`AlertPolicy.step`; a normal window of
        any other device costs one state lookup. ``per_window``: each anomaly that survives
        the cooldown is one alert.

        ``enter(position)`` is called before the state of a window's device is written (the
        Faust agent uses it to make that window's event current, so the table writes its
        changelog to the window's partition).
        """
        ended = self._observe_feeds(result)
        if not self.policy.episodes:
            return self._per_window_alerts(result, state, enter) + ended
        w = result.scored
        if w is None:
            return ended
        out: list[OutRecord] = []
        now = self.clock()
        model = result.model or self.model  # the model that scored this batch
        policy, threshold, version, topic = (
            self.policy,
            float(model.threshold.value),
            model.version,
            self.topics.alerts,
        )
        # Each device's newest state of this batch, written to ``state`` once at the end:
        # with the Faust table every write is a changelog record, and an open episode
        # changes its state on every window.
        written: dict[str, tuple[int, Any]] = {}
        skip = w.skip

        def get(device_id: str) -> Any:
            mine = written.get(device_id)
            return state.get(device_id) if mine is None else mine[1]

        devices, seqs, tss, scores = w.device_id, w.seq, w.ts, w.score
        for i, anomalous in enumerate(w.anomaly):
            if skip and i in skip:  # dead-lettered: no score record, no alert
                continue
            device_id = devices[i]
            entry: Any = None
            if not anomalous:  # only a device with an open episode has anything to do
                try:
                    entry = get(device_id)
                except Exception:
                    continue  # a broken state cannot end an episode; it must not stop the batch
                if entry is None or not entry.get("open"):
                    continue
            seq, ts, score = seqs[i], tss[i], scores[i]
            try:
                if anomalous:
                    entry = get(device_id)
                new, events = policy.step(
                    entry, device_id, seq, ts, score, threshold, anomalous, version
                )
                if new is not None:
                    written[device_id] = (w.pos[i], new)
            except Exception:
                # Fail open: a broken episode state must not swallow an alert.
                log.exception("alert state unavailable for %s; alerting without it", device_id)
                if not anomalous:
                    continue
                _, events = policy.step(None, device_id, seq, ts, score, threshold, True, version)
            for phase, episode in events:
                alert = policy.episode_record(
                    device_id,
                    phase,
                    episode,
                    seq=seq,
                    ts=ts,
                    score=score,
                    threshold=threshold,
                    model_version=version,
                    detected_at=now,
                )
                out.append(OutRecord(topic, device_id.encode(), encode_json(alert)))
                self.metrics.alerts.labels(alert["severity"]).inc()
        _store(state, written, enter)
        return out + ended

    # ------------------------------------------------------------ feeds (loop part)
    def _observe_feeds(self, result: BatchResult) -> list[OutRecord]:
        """Record the batch's devices as alive; the ``end`` of each stale episode that ends."""
        w = result.scored
        if w is None or not w.partition:
            return []
        score: Sequence[float | None] = w.score
        if w.skip:  # a dead-lettered window proves the feed alive, but has no score
            score = [None if i in w.skip else v for i, v in enumerate(w.score)]
        events = self.feeds.observe(w.device_id, w.seq, w.ts, score, w.anomaly, w.partition)
        return self._stale_records(events)

    def stale_alerts(self, lagging: Collection[int] = ()) -> list[OutRecord]:
        """The timer's part (every second): ``feed_stale`` starts of devices silent for
        ``alerts.stale_after_s``, and the device and open-episode gauges.

        Parameters
        ----------
        lagging : collection of int
            Input partitions with consumer lag: their devices' windows may be waiting, so
            they are not judged.
        """
        records = self._stale_records(self.feeds.due(lagging))
        self._set_feed_gauges(self.alert_state)
        return records

    def restore_stale(self, open_stale: Mapping[str, Mapping[str, Any]]) -> list[OutRecord]:
        """Hand the open ``feed_stale`` episodes read back on assignment to the feed watch;
        the ``end`` records of those whose device has sent since (to deliver now)."""
        return self._stale_records(self.feeds.restore(open_stale))

    def seed_feeds(self, newest: Sequence[tuple[InRecord, float]]) -> int:
        """Seed the feed watch with windows processed before this assignment, each with its
        Kafka timestamp (``pipeline.feed_restore``); returns how many devices were added.
        Undecodable ones are skipped (they were dead-lettered when first consumed)."""
        if not newest:
            return 0
        decoded = decode_records([r for r, _ in newest], self.max_message_bytes)
        added = 0
        for i, pos in enumerate(decoded.index):
            record, sent_at = newest[pos]
            added += self.feeds.seed(
                decoded.device_id[i], record.partition, sent_at, decoded.seq[i], decoded.ts[i]
            )
        return added

    def _stale_records(self, events: Sequence[StaleEvent]) -> list[OutRecord]:
        out = []
        now = self.clock()
        for phase, device_id, episode, feed in events:
            alert = stale_record(
                phase,
                device_id,
                episode,
                seq=feed.seq,
                ts=feed.ts,
                score=feed.score,
                threshold=self.threshold,
                model_version=self.version,
                detected_at=now,
            )
            out.append(OutRecord(self.topics.alerts, device_id.encode(), encode_json(alert)))
            self.metrics.alerts.labels(alert["severity"]).inc()
            log.info(
                "feed_stale %s for device %s (silent %.1f s)", phase, device_id, alert["silent_s"]
            )
        return out

    def _set_feed_gauges(self, state: Mapping[str, Any]) -> None:
        active, stale = self.feeds.counts()
        m = self.metrics
        m.devices_active.set(active)
        m.devices_stale.set(stale)
        m.episodes_open.labels(KIND_TECHNICAL).set(stale)
        m.episodes_open.labels(KIND_PHYSIOLOGICAL).set(self._open_episodes(state))

    def _open_episodes(self, state: Mapping[str, Any]) -> int:
        """Open physiological episodes of the devices this process tracks (a device's state
        may be held by several workers after a restore; only its owner counts it)."""
        n = 0
        for device, _ in self.feeds.snapshot():
            try:
                entry = state.get(device)
            except Exception:
                continue
            if isinstance(entry, Mapping) and entry.get("open"):
                n += 1
        return n

    def _per_window_alerts(
        self,
        result: BatchResult,
        state: MutableMapping[str, Any],
        enter: Callable[[int], None] | None,
    ) -> list[OutRecord]:
        """``alerts.mode: per_window``: one alert per anomaly outside the cooldown."""
        out = []
        now = self.clock()
        model = result.model or self.model
        threshold, version = float(model.threshold.value), model.version
        for pos, device_id, seq, ts, score in result.anomalies:
            try:
                if enter is not None:
                    enter(pos)
                severity = self.policy.decide(state, device_id, ts, score, threshold)
            except Exception:
                # Fail open: a broken de-duplication state must not swallow an alert.
                log.exception("alert state unavailable for %s; alerting without de-dup", device_id)
                severity = self.policy.severity(score, threshold)
            if severity is None:
                continue
            alert = {
                "alert_id": self.policy.alert_id(device_id, seq, version),
                "device_id": device_id,
                "seq": seq,
                "ts": ts,
                "score": score,
                "threshold": threshold,
                "severity": severity,
                "model_version": version,
                "detected_at": now,
            }
            out.append(OutRecord(self.topics.alerts, device_id.encode(), encode_json(alert)))
            self.metrics.alerts.labels(severity).inc()
        return out

    def delivered(self, result: BatchResult) -> None:
        """Record end-to-end latency once the batch's records are acknowledged."""
        if len(result.window_ts):
            lat = np.maximum(self.clock() - result.window_ts, 0.0)
            observe_many(self.metrics.end_to_end_latency, lat)


def _store(
    state: MutableMapping[str, Any],
    written: Mapping[str, tuple[int, Any]],
    enter: Callable[[int], None] | None,
) -> None:
    """Write each device's newest state of a batch (``enter`` first: the table's changelog
    record then goes to that window's partition). A state that cannot be written is logged:
    its alerts are already made, and the next window of the device starts from the old one."""
    for device_id, (pos, new) in written.items():
        try:
            if enter is not None:
                enter(pos)
            state[device_id] = new
        except Exception:
            log.exception("alert state of %s could not be stored", device_id)
