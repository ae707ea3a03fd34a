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


def test_readiness_fails_while_outputs_stay_undelivered(
    served: tuple[MetricsServer, HealthState, PipelineMetrics],
) -> None:
    server, health, metrics = served
    now = [1000.0]
    health.clock = lambda: now[0]
    health.model_loaded, health.assigned_partitions, health.delivery_stall_s = True, 1, 30.0
    metrics.delivery_stalled.set_function(health.delivery_stalled_s)  # as the worker wires it
    assert health.delivery_stalled_s() == 0.0
    health.undelivered_since = 1000.0  # a batch was handed to the producer
    now[0] = 1030.0  # exactly the limit: still ready
    assert _get(server, "/readyz") == (200, "ok\n")
    now[0] = 1042.4
    assert _get(server, "/readyz") == (503, "outputs undelivered for 42 s (broker unreachable?)\n")
    assert _get(server, "/healthz")[0] == 200  # live: retrying, not stuck
    page = _get(server, "/metrics")[1].splitlines()
    assert any(line.startswith("ecg_delivery_stalled_seconds 42.") for line in page), (
        "the gauge reads the stall at scrape time"
    )
    health.undelivered_since = None  # delivered
    assert _get(server, "/readyz") == (200, "ok\n")
    assert "ecg_delivery_stalled_seconds 0.0" in _get(server, "/metrics")[1].splitlines()


def test_model_check_comes_before_the_stall_and_the_stall_before_partitions() -> None:
    health = HealthState(delivery_stall_s=5.0, clock=lambda: 100.0, undelivered_since=10.0)
    assert health.ready() == (False, "model not loaded")
    health.model_loaded = True  # no partition either: the stall is the more useful reason
    assert health.ready() == (False, "outputs undelivered for 90 s (broker unreachable?)")


def test_the_stall_limit_is_a_checked_worker_setting() -> None:
    from ecgwatch.config import ConfigError, load_settings

    env = {"ECGWATCH_WORKER__DELIVERY_STALL_S": "12.5"}
    assert load_settings(environ=env).delivery_stall_s == 12.5
    assert load_settings(environ={}).delivery_stall_s == 30.0
    with pytest.raises(ConfigError, match=r"worker.delivery_stall_s: 0\.5 .*1-3600"):
        load_settings(environ={"ECGWATCH_WORKER__DELIVERY_STALL_S": "0.5"})


def test_metrics_are_on_metrics_and_root_and_other_paths_are_not_found(
    served: tuple[MetricsServer, HealthState, PipelineMetrics],
) -> None:
    server, _, _ = served
    for path in ("/metrics", "/"):
        status, body = _get(server, path)
        assert status == 200 and "ecg_windows_total" in body
    status, body = _get(server, "/nope")
    assert status == 404
    assert "/nope" in body and "/metrics" in body and "/readyz" in body


def test_a_port_in_use_is_a_clear_error_naming_the_setting(
    served: tuple[MetricsServer, HealthState, PipelineMetrics],
) -> None:
    from pipeline.errors import PipelineConfigError

    taken, _, _ = served
    with pytest.raises(PipelineConfigError, match=r"^ingest\.metrics_port: cannot listen on "):
        MetricsServer(
            create_metrics().registry,
            HealthState(),
            host="127.0.0.1",
            port=taken.port,
            setting="ingest.metrics_port",
        )
    with pytest.raises(PipelineConfigError, match=r"worker\.metrics_port.*a free port, or 0"):
        MetricsServer(create_metrics().registry, HealthState(), host="127.0.0.1", port=taken.port)
