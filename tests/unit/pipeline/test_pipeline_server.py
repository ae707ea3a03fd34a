"""/healthz, /readyz and /metrics of the worker's HTTP server."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from pipeline.metrics import PipelineMetrics, create_metrics
from pipeline.server import HealthState, MetricsServer


@pytest.fixture
def served() -> Iterator[tuple[MetricsServer, HealthState, PipelineMetrics]]:
    metrics = create_metrics()
    health = HealthState()
    server = MetricsServer(metrics.registry, health, host="127.0.0.1", port=0).start()
    try:
        yield server, health, metrics
    finally:
        server.stop()


def _get(server: MetricsServer, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def test_readiness_transitions(served: tuple[MetricsServer, HealthState, PipelineMetrics]) -> None:
    server, health, _ = served
    assert _get(server, "/readyz") == (503, "model not loaded\n")
    health.model_loaded = True
    assert _get(server, "/readyz") == (503, "no input partition assigned (yet)\n")
    health.assigned_partitions = 2
    assert _get(server, "/readyz") == (200, "ok\n")
    health.assigned_partitions = 0  # revoked in a rebalance
    assert _get(server, "/readyz")[0] == 503


def test_liveness_follows_the_heartbeat(
    served: tuple[MetricsServer, HealthState, PipelineMetrics],
) -> None:
    server, health, _ = served
    health.model_loaded, health.assigned_partitions = True, 1
    assert _get(server, "/healthz") == (200, "ok\n")
    health.heartbeat = time.monotonic() - health.max_heartbeat_age_s - 5  # loop stuck
    status, body = _get(server, "/healthz")
    assert status == 503 and "event loop silent" in body
    assert _get(server, "/readyz")[0] == 503  # not ready when not live
    health.beat()
    assert _get(server, "/healthz")[0] == 200


def test_metrics_page(served: tuple[MetricsServer, HealthState, PipelineMetrics]) -> None:
    server, _, metrics = served
    metrics.windows.labels("scored").inc(3)
    metrics.rejected.labels("invalid_json").inc()
    metrics.model_info.labels("v1", "dense").set(1)
    metrics.model_threshold.set(0.25)
    status, text = _get(server, "/metrics")
    assert status == 200
    for line in (
        'ecg_windows_total{outcome="scored"} 3.0',
        'ecg_windows_rejected_total{reason="invalid_json"} 1.0',
        'ecg_model_info{kind="dense",version="v1"} 1.0',
        "ecg_model_threshold 0.25",
    ):
        assert line in text.splitlines()
    for name in (
        "ecg_reconstruction_error",
        "ecg_scoring_batch_size",
        "ecg_scoring_duration_seconds",
        "ecg_end_to_end_latency_seconds",
    ):
        assert f"# TYPE {name} histogram" in text


def test_metrics_registries_are_private() -> None:
    a, b = create_metrics(), create_metrics()  # no "duplicated timeseries" error
    a.windows.labels("scored").inc()
    assert b.registry.get_sample_value("ecg_windows_total", {"outcome": "scored"}) is None
