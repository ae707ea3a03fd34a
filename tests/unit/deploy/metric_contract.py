"""The worker's metric contract: the one list every deploy test checks against.

Rules, dashboards and docs may use only these names. A live test (a worker scraped over HTTP)
will check the other direction: the worker exports exactly the ``ecg_*`` names below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CONTRACT",
    "DRIFT_STATISTICS",
    "EPISODE_KINDS",
    "EVERY_METRIC",
    "INGEST_CONTRACT",
    "INGEST_REJECT_REASONS",
    "OUTCOMES",
    "REJECT_REASONS",
    "ROLLOUT_OUTCOMES",
    "SCRAPE_LABELS",
    "SEVERITIES",
    "SHADOW_AGREEMENT",
    "STANDARD_SERIES",
    "Metric",
    "allowed_labels",
    "base_metric",
    "series_names",
]

OUTCOMES = frozenset({"scored", "rejected"})
SEVERITIES = frozenset({"warning", "critical"})
#: ``kind`` of an alert episode (pipeline.policy): a patient's beats or the feed itself.
EPISODE_KINDS = frozenset({"physiological", "technical"})
#: ``outcome`` of a hot model roll-out (pipeline.rollout).
ROLLOUT_OUTCOMES = frozenset({"switched", "refused"})
#: ``statistic`` of ``ecg_input_drift`` (detector.drift.INPUT_STATISTICS).
DRIFT_STATISTICS = frozenset({"min", "max"})
#: ``agreement`` of a shadow model's decision with the served one's.
SHADOW_AGREEMENT = frozenset({"agree", "disagree", "failed"})
REJECT_REASONS = frozenset(
    {
        "invalid_json",
        "not_utf8",
        "missing_field",
        "wrong_type",
        "wrong_length",
        "non_finite",
        "not_numeric",
        "wrong_shape",
        "empty",
        "too_large",
        "invalid_value",
        "unknown_encoding",
        "flat_window",
        "scoring_error",
    }
)

#: ``reason`` of ``ecg_ingest_rejected_total``: the codec's (no scoring there, so no
#: ``flat_window`` or ``scoring_error``) and the stage's own, for chunks that do not follow on.
INGEST_REJECT_REASONS = (REJECT_REASONS - {"flat_window", "scoring_error"}) | {
    "samples_gap",
    "samples_out_of_order",
    "seq_reset",
    "fs_changed",
}


@dataclass(frozen=True)
class Metric:
    """One exported metric family: its type, label names and (where closed) label values."""

    name: str
    type: str  # "counter" | "gauge" | "histogram"
    help: str
    unit: str = ""
    labels: tuple[str, ...] = ()
    # Label name -> every value the worker may emit; labels absent here are open-ended.
    values: dict[str, frozenset[str]] = field(default_factory=dict)


_METRICS = (
    Metric(
        "ecg_windows_total",
        "counter",
        "Windows consumed, by outcome.",
        "windows",
        ("outcome",),
        {"outcome": OUTCOMES},
    ),
    Metric(
        "ecg_windows_anomalous_total", "counter", "Scored windows over the threshold.", "windows"
    ),
    Metric(
        "ecg_windows_rejected_total",
        "counter",
        "Windows sent to the dead-letter topic.",
        "windows",
        ("reason",),
        {"reason": REJECT_REASONS},
    ),
    Metric(
        "ecg_alerts_total",
        "counter",
        "Alerts published after the alert policy.",
        "alerts",
        ("severity",),
        {"severity": SEVERITIES},
    ),
    Metric(
        "ecg_reconstruction_error",
        "histogram",
        "Reconstruction error (MAE) per window.",
        "MAE of normalised samples",
    ),
    Metric("ecg_scoring_batch_size", "histogram", "Windows per scoring call.", "windows"),
    Metric("ecg_scoring_duration_seconds", "histogram", "Time of one scoring call.", "seconds"),
    Metric(
        "ecg_end_to_end_latency_seconds",
        "histogram",
        "Window timestamp to score produced.",
        "seconds",
    ),
    Metric("ecg_model_info", "gauge", "Loaded model (value 1).", "", ("version", "kind")),
    Metric(
        "ecg_model_threshold",
        "gauge",
        "Anomaly threshold of the loaded model.",
        "MAE of normalised samples",
    ),
    Metric("ecg_model_loaded", "gauge", "1 when a verified model is loaded, else 0.", ""),
    Metric(
        "ecg_consumer_lag",
        "gauge",
        "Messages behind the high watermark.",
        "messages",
        ("topic", "partition"),
    ),
    Metric(
        "ecg_consumer_assigned_partitions",
        "gauge",
        "Partitions assigned to this worker.",
        "partitions",
    ),
    Metric(
        "ecg_delivery_stalled_seconds",
        "gauge",
        "Age of the oldest output batch awaiting its acknowledgements (0: none).",
        "seconds",
    ),
    Metric(
        "ecg_delivery_retries_total",
        "counter",
        "Output batches sent again after a failed delivery.",
        "retries",
    ),
    Metric(
        "ecg_model_reloads_total",
        "counter",
        "Model roll-outs while running: switched, or refused (the old model kept).",
        "roll-outs",
        ("outcome",),
        {"outcome": ROLLOUT_OUTCOMES},
    ),
    Metric(
        "ecg_shadow_windows_total",
        "counter",
        "Windows the shadow model scored, by agreement with the served decision.",
        "windows",
        ("agreement",),
        {"agreement": SHADOW_AGREEMENT},
    ),
    Metric(
        "ecg_shadow_score_ratio",
        "histogram",
        "Shadow score / served score per window.",
        "ratio",
    ),
    Metric(
        "ecg_shadow_scoring_duration_seconds",
        "histogram",
        "Time of the shadow model's call on one batch.",
        "seconds",
    ),
    Metric("ecg_shadow_model_info", "gauge", "The shadow model (value 1).", "", ("version",)),
    Metric(
        "ecg_score_drift",
        "gauge",
        "PSI of the newest scores against the model's training-split reference.",
        "PSI",
    ),
    Metric(
        "ecg_input_drift",
        "gauge",
        "PSI of a per-window input statistic against the model's reference.",
        "PSI",
        ("statistic",),
        {"statistic": DRIFT_STATISTICS},
    ),
    Metric(
        "ecg_model_refused",
        "gauge",
        "1 while the registry's latest names a version this worker refused.",
        "",
    ),
    Metric(
        "ecg_devices_active",
        "gauge",
        "Devices this worker consumed windows from whose feed is not stale.",
        "devices",
    ),
    Metric(
        "ecg_devices_stale",
        "gauge",
        "Devices of this worker silent for alerts.stale_after_s (open feed_stale episodes).",
        "devices",
    ),
    Metric(
        "ecg_alert_episodes_open",
        "gauge",
        "Open alert episodes of this worker's devices, by kind.",
        "episodes",
        ("kind",),
        {"kind": EPISODE_KINDS},
    ),
)

#: name -> Metric for every ``ecg_*`` family the worker exports.
CONTRACT: dict[str, Metric] = {m.name: m for m in _METRICS}

_INGEST_METRICS = (
    Metric("ecg_ingest_chunks_total", "counter", "Sample chunks used.", "chunks"),
    Metric("ecg_ingest_samples_total", "counter", "Samples fed to beat extraction.", "samples"),
    Metric("ecg_ingest_beats_total", "counter", "Beat windows produced to ecg.windows.", "beats"),
    Metric(
        "ecg_ingest_beats_skipped_total", "counter", "Beats found again after a restart.", "beats"
    ),
    Metric("ecg_ingest_rejected_intervals_total", "counter", "RR outside the recipe.", "intervals"),
    Metric("ecg_ingest_segments_total", "counter", "Device segments started.", "segments"),
    Metric(
        "ecg_ingest_segments_inverted_total",
        "counter",
        "Segments turned over to the model's polarity.",
        "segments",
    ),
    Metric(
        "ecg_ingest_rejected_total",
        "counter",
        "Chunks dead-lettered, by reason.",
        "chunks",
        ("reason",),
        {"reason": INGEST_REJECT_REASONS},
    ),
    Metric("ecg_ingest_devices", "gauge", "Devices with buffered signal.", "devices"),
)

#: name -> Metric for every ``ecg_*`` family the beat-extraction stage (``ecgwatch ingest``)
#: exports.
INGEST_CONTRACT: dict[str, Metric] = {m.name: m for m in _INGEST_METRICS}

#: Every family a rule or dashboard query may use: the worker's and the stage's.
EVERY_METRIC: dict[str, Metric] = CONTRACT | INGEST_CONTRACT

#: Series that exist without the worker's own code: Prometheus's scrape series and
#: prometheus_client's default process collector (Linux).
STANDARD_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    }
)

#: Labels Prometheus attaches at scrape time (target labels), usable on any series.
SCRAPE_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container"})

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def series_names() -> frozenset[str]:
    """Every series name a query may select: counters/gauges as is, histograms' three series."""
    names: set[str] = set(STANDARD_SERIES)
    for m in EVERY_METRIC.values():
        if m.type == "histogram":
            names.update(m.name + s for s in _HISTOGRAM_SUFFIXES)
        else:
            names.add(m.name)
    return frozenset(names)


def base_metric(series: str) -> Metric | None:
    """The contract family a series name belongs to (``x_bucket`` -> ``x``), or None."""
    if series in EVERY_METRIC:
        return EVERY_METRIC[series]
    for suffix in _HISTOGRAM_SUFFIXES:
        base = series.removesuffix(suffix)
        if base != series and base in EVERY_METRIC and EVERY_METRIC[base].type == "histogram":
            return EVERY_METRIC[base]
    return None


def allowed_labels(series: str) -> frozenset[str]:
    """Label names a selector on ``series`` may match (``le`` only on histogram buckets)."""
    metric = base_metric(series)
    labels = set(SCRAPE_LABELS)
    if metric is not None:
        labels.update(metric.labels)
        if series.endswith("_bucket"):
            labels.add("le")
    return frozenset(labels)
