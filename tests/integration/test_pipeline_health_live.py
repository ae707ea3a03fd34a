"""Pipeline health live (issue 14 item 3): a worker whose outputs cannot be delivered turns
``/readyz`` red with the reason, ``ecg_delivery_stalled_seconds`` rises in a real Prometheus and
``EcgDeliveryStalled`` fires; with the broker stopped meanwhile it stays so, and once the broker
is back and accepts writes the worker is ready again by itself. ``EcgModelNotLoaded`` fires for a
target of the worker job that reports no loaded model, never for the worker.

A private broker (this test stops it). The scores topic is deleted first (the broker does not
auto-create topics), so the next batch's scores cannot be delivered while the input topic is
still read: that puts output batches in flight deterministically, which stopping the broker
alone does not (a worker that has caught up has nothing to deliver). Then the broker is stopped
and started again, and the scores topic re-created.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ecgwatch import broker
from pipeline.replay import replay
from pipeline.settings import TopicNames
from pipeline.topics import create_topics, default_topics
from tests.integration.conftest import SeedModel
from tests.integration.prometheus_server import PrometheusServer, running_prometheus
from tests.integration.stream import TopicReader, WorkerPool, by_window, new_topics, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STALL_S = 3.0
PARTITIONS = 2
#: The shipped rule's bound (deploy/prometheus/rules/alerts.yml); the harness shortens only for.
RULE_BOUND_S = 30.0


@contextmanager
def _stand_in_exporter() -> Iterator[str]:
    """Something else answering on a worker-job target: metrics, but no ecg_model_loaded."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"# TYPE other_process_up gauge\nother_process_up 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _delete_topic(bootstrap: str, topic: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()


def _recreate_scores(bootstrap: str, topics: TopicNames, partitions: int) -> None:
    specs = default_topics(partitions, scores=topics.scores)
    create_topics(bootstrap, [t for t in specs if t.name == topics.scores])


def _firing(prom: PrometheusServer, name: str) -> list[dict[str, Any]]:
    return [a for a in prom.alerts() if a["labels"]["alertname"] == name and a["state"] == "firing"]


def _body(url: str) -> tuple[int | None, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except OSError:
        return None, ""


def test_undeliverable_outputs_turn_readiness_red_and_fire_the_alert(
    seed_model: SeedModel, ecg_arrays: tuple, tmp_path: Path
) -> None:
    kafka_dir = tmp_path / "kafka"
    port, controller = broker.free_ports(2)
    broker.start(port, kafka_dir, controller)
    bootstrap = f"localhost:{port}"
    pool = WorkerPool(seed_model.registry, bootstrap, tmp_path / "workers")
    x, _ = ecg_arrays
    try:
        topics = new_topics(bootstrap, "health", partitions=PARTITIONS)
        worker = pool.start(topics, env={"ECGWATCH_WORKER__DELIVERY_STALL_S": str(STALL_S)})
        target = f"127.0.0.1:{worker.metrics_port}"
        (tmp_path / "prom").mkdir()
        with (
            _stand_in_exporter() as other,
            running_prometheus([target, other], tmp_path / "prom") as prom,
        ):
            replay(x[:100], bootstrap=bootstrap, topic=topics.windows, devices=4, progress=None)
            wait_until(lambda: worker.scored() == 100, 90, "100 windows scored", worker)
            assert worker.probe("/readyz") == 200
            assert worker.metric("ecg_delivery_stalled_seconds") < 1.0

            # EcgModelNotLoaded: the stand-in target, never the worker with its model.
            fired = prom.wait_for(
                lambda: _firing(prom, "EcgModelNotLoaded"), 60, "EcgModelNotLoaded firing"
            )
            assert [a["labels"]["instance"] for a in fired] == [other]

            # Outputs refused: the next batch cannot be delivered.
            _delete_topic(bootstrap, topics.scores)
            t_block = time.monotonic()
            replay(
                x[100:150],
                bootstrap=bootstrap,
                topic=topics.windows,
                devices=4,
                progress=None,
                seq_offset=1000,
            )
            wait_until(
                lambda: _body(worker.url("/readyz"))[0] == 503,
                STALL_S + 30,
                "/readyz 503 while outputs are refused",
                worker,
            )
            status, reason = _body(worker.url("/readyz"))
            print(f"readyz {status} {reason.strip()!r} {time.monotonic() - t_block:.1f} s")
            assert status == 503 and reason.startswith("outputs undelivered for ")
            assert reason.strip().endswith("s (broker unreachable?)")
            assert worker.probe("/healthz") == 200  # live: it retries, a restart would not help
            first = worker.metric("ecg_delivery_stalled_seconds")
            assert first > STALL_S
            prom.wait_for(
                lambda: (
                    (prom.scalar(f'ecg_delivery_stalled_seconds{{instance="{target}"}}') or 0)
                    > first + 1
                ),
                30,
                "ecg_delivery_stalled_seconds rising in Prometheus",
            )

            # The broker goes away while the outputs are pending: still stalled, still live.
            broker.stop(kafka_dir, timeout_s=20)
            fired = prom.wait_for(
                lambda: _firing(prom, "EcgDeliveryStalled"),
                RULE_BOUND_S + 60,
                "EcgDeliveryStalled firing",
            )
            assert [a["labels"]["instance"] for a in fired] == [target]
            assert _body(worker.url("/readyz"))[0] == 503
            assert worker.probe("/healthz") == 200
            assert not _firing(prom, "EcgModelNotLoaded") or all(
                a["labels"]["instance"] == other for a in _firing(prom, "EcgModelNotLoaded")
            )

            # Back, and accepting writes: delivered, ready again, the gauge back to 0.
            broker.start(port, kafka_dir, controller)
            _recreate_scores(bootstrap, topics, PARTITIONS)
            wait_until(
                lambda: worker.probe("/readyz") == 200,
                150,
                "/readyz 200 after the broker is back",
                worker,
            )
            assert worker.metric("ecg_delivery_stalled_seconds") < 1.0
            with TopicReader(bootstrap, topics.scores) as reader:  # the stalled batch's scores
                reader.until(
                    lambda recs: len(by_window(recs)) == 50,
                    90,
                    "the 50 stalled scores",
                    worker.log_tail,
                )
            print("delivery retries:", worker.metric("ecg_delivery_retries_total"))
    finally:
        pool.close()
        broker.stop(kafka_dir, timeout_s=10)
