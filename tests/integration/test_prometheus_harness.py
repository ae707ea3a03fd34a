"""The Prometheus harness of the live test, checked against a stand-in exporter of the metric
contract: counts arrive, and stopping the target fires EcgWorkerDown with the shipped rules.
Replace the stand-in by a real worker for issue 4, item 5."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app

from tests.integration.prometheus_server import free_port, running_prometheus

pytestmark = pytest.mark.integration


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no access log on stderr
        pass


@pytest.fixture
def stand_in() -> Iterator[tuple[WSGIServer, Counter]]:
    registry = CollectorRegistry()
    windows = Counter("ecg_windows", "windows", ["outcome"], registry=registry)
    Gauge("ecg_model_loaded", "model loaded", registry=registry).set(1)
    server = make_server(
        "127.0.0.1", free_port(), make_wsgi_app(registry), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, windows
    server.shutdown()
    server.server_close()


def test_counts_arrive_and_a_stopped_target_fires_worker_down(
    stand_in: tuple[WSGIServer, Counter], tmp_path: Path
) -> None:
    server, windows = stand_in
    windows.labels("scored").inc(37)
    windows.labels("rejected").inc(5)
    target = f"127.0.0.1:{server.server_port}"
    with running_prometheus([target], tmp_path) as prom:
        total = prom.wait_for(lambda: prom.scalar("sum(ecg_windows_total)"), what="a scrape")
        assert total == 42
        assert not [a for a in prom.alerts() if a["labels"]["alertname"] == "EcgWorkerDown"]
        server.shutdown()
        server.server_close()
        firing = prom.wait_for(
            lambda: [
                a
                for a in prom.alerts()
                if a["labels"]["alertname"] == "EcgWorkerDown" and a["state"] == "firing"
            ],
            what="EcgWorkerDown firing",
        )
        assert firing[0]["labels"]["instance"] == target
