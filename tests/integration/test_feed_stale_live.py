"""``EcgManyFeedsStale`` live: a real worker whose devices all fall silent reports them in
``ecg_devices_stale``, a real Prometheus scraping it fires the shipped rule (its ``for:``
shortened by the harness), and it resolves once the devices send again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.replay import device_of, replay
from tests.integration.prometheus_server import PrometheusServer, running_prometheus
from tests.integration.stream import WorkerPool, new_topics, wait_until
from tests.integration.test_feed_stale import _Feeder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES = 8


def _firing(prom: PrometheusServer) -> list[dict[str, Any]]:
    return [
        a
        for a in prom.alerts()
        if a["labels"]["alertname"] == "EcgManyFeedsStale" and a["state"] == "firing"
    ]


def test_many_silent_devices_fire_the_rule_and_it_resolves(
    kafka_bootstrap: str, ecg_arrays: tuple, worker_pool: WorkerPool, tmp_path: Path
) -> None:
    x, _ = ecg_arrays
    topics = new_topics(kafka_bootstrap, "it.stale.live", partitions=2)
    worker = worker_pool.start(topics, env={"ECGWATCH_ALERTS__STALE_AFTER_S": "2"})
    (tmp_path / "prom").mkdir()
    with running_prometheus([f"127.0.0.1:{worker.metrics_port}"], tmp_path / "prom") as prom:
        replay(
            x[:40], bootstrap=kafka_bootstrap, topic=topics.windows, devices=DEVICES, progress=None
        )
        wait_until(lambda: worker.metric("ecg_devices_stale") == DEVICES, 60, "all stale", worker)
        fired = prom.wait_for(lambda: _firing(prom), 90, "EcgManyFeedsStale firing")
        assert fired[0]["labels"]["severity"] == "warning"
        assert "100%" in fired[0]["annotations"]["summary"]

        names = sorted({device_of(i, DEVICES)[0] for i in range(40)})
        feeder = _Feeder(kafka_bootstrap, topics.windows, names, x[0].tolist())
        feeder.start()
        try:
            wait_until(
                lambda: worker.metric("ecg_devices_active") == DEVICES, 30, "all back", worker
            )
            prom.wait_for(lambda: not _firing(prom), 60, "EcgManyFeedsStale resolved")
        finally:
            feeder.stop()
    worker.assert_running()
