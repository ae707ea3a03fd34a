"""Prometheus metrics of the worker, created by a factory on an injectable registry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

__all__ = ["ERROR_BUCKETS", "PipelineMetrics", "create_metrics", "observe_many"]

#: Bounds of ``ecg_reconstruction_error``. Finest where the shipped presets' thresholds and
#: their normal beats' scores sit, so the dashboard's quantiles and threshold line resolve
#: them rather than piling everything into one bucket (figures: docs/operations.md, "Metrics",
#: and docs/model-quality.md); a training test checks the default model's threshold has
#: several bounds on each side.
ERROR_BUCKETS = (
    0.0005,
    0.001,
    0.0015,
    0.002,
    0.0025,
    0.003,
    0.004,
    0.005,
    0.006,
    0.008,
    0.01,
    0.0125,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.2,
    0.5,
)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_RATIO_BUCKETS = (0.25, 0.5, 0.67, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 4.0)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class PipelineMetrics:
    """The worker's metric objects (no device id label; names and meaning in docs/operations.md)."""

    registry: CollectorRegistry
    windows: Counter
    anomalous: Counter
    rejected: Counter
    alerts: Counter
    reconstruction_error: Histogram
    batch_size: Histogram
    scoring_duration: Histogram
    end_to_end_latency: Histogram
    model_info: Gauge
    model_threshold: Gauge
    model_loaded: Gauge
    consumer_lag: Gauge
    assigned_partitions: Gauge
    delivery_stalled: Gauge
    delivery_retries: Counter
    model_reloads: Counter
    score_drift: Gauge
    shadow_windows: Counter
    shadow_score_ratio: Histogram
    shadow_duration: Histogram
    shadow_info: Gauge
    input_drift: Gauge
    model_refused: Gauge
    devices_active: Gauge
    devices_stale: Gauge
    episodes_open: Gauge


def create_metrics(registry: CollectorRegistry | None = None) -> PipelineMetrics:
    """Create (and register) every worker metric.

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where to register; a fresh private registry by default, so tests and several
        workers in one process never collide.
    """
    if registry is None:
        reg = CollectorRegistry()
        ProcessCollector(registry=reg)  # process_* (RSS, CPU, fds), as the default registry has
    else:
        reg = registry
    return PipelineMetrics(
        registry=reg,
        windows=Counter(
            "ecg_windows",
            "Windows consumed, by outcome (scored or rejected).",
            ["outcome"],
            registry=reg,
        ),
        anomalous=Counter(
            "ecg_windows_anomalous", "Scored windows above the threshold.", registry=reg
        ),
        rejected=Counter(
            "ecg_windows_rejected",
            "Messages sent to the dead-letter topic.",
            ["reason"],
            registry=reg,
        ),
        alerts=Counter(
            "ecg_alerts", "Alerts emitted after the alert policy.", ["severity"], registry=reg
        ),
        reconstruction_error=Histogram(
            "ecg_reconstruction_error",
            "Reconstruction error (MAE) of scored windows.",
            buckets=ERROR_BUCKETS,
            registry=reg,
        ),
        batch_size=Histogram(
            "ecg_scoring_batch_size",
            "Windows per scoring call.",
            buckets=_BATCH_BUCKETS,
            registry=reg,
        ),
        scoring_duration=Histogram(
            "ecg_scoring_duration_seconds",
            "Wall time of one batched scoring call.",
            buckets=_DURATION_BUCKETS,
            registry=reg,
        ),
        end_to_end_latency=Histogram(
            "ecg_end_to_end_latency_seconds",
            "Window ts (end of the window) to its score record being acknowledged.",
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        ),
        model_info=Gauge(
            "ecg_model_info", "The loaded model (value 1).", ["version", "kind"], registry=reg
        ),
        model_threshold=Gauge(
            "ecg_model_threshold", "Decision threshold of the loaded model.", registry=reg
        ),
        model_loaded=Gauge("ecg_model_loaded", "1 when a verified model is loaded.", registry=reg),
        consumer_lag=Gauge(
            "ecg_consumer_lag",
            "Messages behind the high watermark.",
            ["topic", "partition"],
            registry=reg,
        ),
        assigned_partitions=Gauge(
            "ecg_consumer_assigned_partitions",
            "Input partitions assigned to this worker.",
            registry=reg,
        ),
        # Read at scrape time from HealthState (pipeline.worker wires it with set_function).
        delivery_stalled=Gauge(
            "ecg_delivery_stalled_seconds",
            "Age of the oldest output batch still awaiting its acknowledgements (0: none).",
            registry=reg,
        ),
        delivery_retries=Counter(
            "ecg_delivery_retries",
            "Times an output batch was sent again after its delivery failed.",
            registry=reg,
        ),
        model_reloads=Counter(
            "ecg_model_reloads",
            "Model roll-outs while running, by outcome (switched, or refused: kept the old).",
            ["outcome"],
            registry=reg,
        ),
        shadow_windows=Counter(
            "ecg_shadow_windows",
            "Windows the shadow model scored, by agreement of its decision with the served one.",
            ["agreement"],
            registry=reg,
        ),
        shadow_score_ratio=Histogram(
            "ecg_shadow_score_ratio",
            "Shadow model's score / served model's score, per window.",
            buckets=_RATIO_BUCKETS,
            registry=reg,
        ),
        shadow_duration=Histogram(
            "ecg_shadow_scoring_duration_seconds",
            "Wall time of the shadow model's call on one batch (its cost).",
            buckets=_DURATION_BUCKETS,
            registry=reg,
        ),
        shadow_info=Gauge(
            "ecg_shadow_model_info", "The shadow model (value 1).", ["version"], registry=reg
        ),
        score_drift=Gauge(
            "ecg_score_drift",
            "PSI of the newest scores against the served model's training-split reference.",
            registry=reg,
        ),
        input_drift=Gauge(
            "ecg_input_drift",
            "PSI of a per-window input statistic of the newest windows against the reference.",
            ["statistic"],
            registry=reg,
        ),
        model_refused=Gauge(
            "ecg_model_refused",
            "1 while the registry's latest names a version this worker refused to load.",
            registry=reg,
        ),
        devices_active=Gauge(
            "ecg_devices_active",
            "Devices this worker consumed windows from whose feed is not stale.",
            registry=reg,
        ),
        devices_stale=Gauge(
            "ecg_devices_stale",
            "Devices of this worker silent for alerts.stale_after_s (open feed_stale episodes).",
            registry=reg,
        ),
        episodes_open=Gauge(
            "ecg_alert_episodes_open",
            "Open alert episodes of this worker's devices, by kind.",
            ["kind"],
            registry=reg,
        ),
    )


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """Observe every value of ``values`` at once (same result as ``observe`` per value).

    One ``searchsorted`` + ``bincount`` per batch instead of a locked Python call per window:
    at tens of thousands of windows a second the per-value calls cost more than the scoring.
    Falls back to per-value ``observe`` if ``prometheus_client``'s internals ever change.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        return
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in arr.tolist():
            histogram.observe(v)
        return
    # observe() counts a value in the first bucket whose upper bound is >= the value.
    idx = np.searchsorted(np.asarray(bounds, dtype=np.float64), arr, side="left")
    counts = np.bincount(idx, minlength=len(bounds))
    for i in np.flatnonzero(counts[: len(bounds)]).tolist():
        buckets[i].inc(int(counts[i]))
    total.inc(float(arr.sum()))
