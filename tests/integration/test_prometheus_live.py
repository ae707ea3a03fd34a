"""Debian's Prometheus scraping a real worker with the project's rules (issue 4, item 5).

Replays windows through a worker, then asks Prometheus's HTTP API: the total of
``ecg_windows_total`` equals the windows sent; the worker exports exactly the metric contract;
stopping the worker makes ``EcgWorkerDown`` fire.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from pipeline.replay import replay
from tests.integration.prometheus_server import running_prometheus
from tests.integration.stream import WorkerPool, new_topics
from tests.unit.deploy.metric_contract import CONTRACT, STANDARD_SERIES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_WINDOWS = 300


def _exported_families(text: str) -> dict[str, str]:
    """``# TYPE name type`` lines of an exposition, as name -> type."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))


def test_prometheus_counts_windows_and_fires_worker_down(
    worker_pool: WorkerPool, kafka_bootstrap: str, ecg_arrays: tuple, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, "prom")
    worker = worker_pool.start(topics)
    with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as resp:
        families = _exported_families(resp.read().decode())
    # prometheus_client names a counter family with or without `_total`: compare without.
    ecg = {n.removesuffix("_total"): t for n, t in families.items() if n.startswith("ecg_")}
    assert not [n for n in ecg if n.endswith("_created")], "created series are disabled"
    expected = {m.name.removesuffix("_total"): m.type for m in CONTRACT.values()}
    assert ecg == expected, "the worker's ecg_* metrics differ from the contract"
    assert {"process_resident_memory_bytes"} <= set(families) | STANDARD_SERIES

    target = f"127.0.0.1:{worker.metrics_port}"
    with running_prometheus([target], tmp_path) as prom:
        x, _ = ecg_arrays
        replay(
            x[:N_WINDOWS], bootstrap=kafka_bootstrap, topic=topics.windows, devices=5, progress=None
        )
        total = prom.wait_for(
            lambda: (v := prom.scalar("sum(ecg_windows_total)")) == N_WINDOWS and v,
            timeout=90,
            what=f"ecg_windows_total == {N_WINDOWS}",
        )
        assert total == N_WINDOWS
        assert prom.scalar("ecg_model_loaded") == 1
        assert not [a for a in prom.alerts() if a["labels"]["alertname"] == "EcgWorkerDown"]
        worker.stop()
        firing = prom.wait_for(
            lambda: [
                a
                for a in prom.alerts()
                if a["labels"]["alertname"] == "EcgWorkerDown" and a["state"] == "firing"
            ],
            timeout=60,
            what="EcgWorkerDown firing",
        )
        assert firing[0]["labels"]["instance"] == target
