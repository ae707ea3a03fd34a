"""The worker's HTTP endpoints: ``/metrics``, ``/healthz`` (liveness), ``/readyz`` (readiness)
and JSON views such as ``/devices`` (:mod:`pipeline.devices`).

Served from a daemon thread (stdlib ``wsgiref``) so that a slow scrape never blocks the event
loop, and so liveness reflects the loop: the engine refreshes the heartbeat every second
(:func:`pipeline.lag.report_consumer_state`, from the batch engine's task or a Faust timer).

Readiness also reflects delivery: :class:`pipeline.cycle.BatchCycle` publishes when the oldest
output batch still awaiting its acknowledgements was handed to the producer
(:attr:`HealthState.undelivered_since`); once that is longer ago than
``worker.delivery_stall_s`` the worker is not ready (it keeps retrying, and stays live: a
restart would not bring the broker back).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app

from pipeline.errors import PipelineConfigError

__all__ = ["METRICS_PATHS", "HealthState", "MetricsServer"]

#: Paths that answer the Prometheus exposition (Prometheus scrapes ``/metrics``).
METRICS_PATHS = ("/", "/metrics")


@dataclass
class HealthState:
    """What the probes report; written by the worker, read by the HTTP thread."""

    model_loaded: bool = False
    assigned_partitions: int = 0
    heartbeat: float = field(default_factory=time.monotonic)
    max_heartbeat_age_s: float = 30.0
    started: bool = False
    #: ``worker.delivery_stall_s``: readiness fails once outputs wait longer for their acks.
    delivery_stall_s: float = 30.0
    #: When (``clock``) the oldest output batch not yet acknowledged was first sent; None when
    #: every output is acknowledged. Written by the event loop, read by the HTTP thread.
    undelivered_since: float | None = None
    clock: Callable[[], float] = time.monotonic

    def beat(self) -> None:
        """Called from the event loop: proves it is not stuck."""
        self.heartbeat = time.monotonic()

    def delivery_stalled_s(self) -> float:
        """Seconds the oldest unacknowledged output batch has waited (0 when none waits)."""
        since = self.undelivered_since  # one read: the event loop may clear it meanwhile
        return 0.0 if since is None else max(0.0, self.clock() - since)

    def live(self) -> tuple[bool, str]:
        """Liveness: the event loop ticked recently."""
        age = time.monotonic() - self.heartbeat
        if age > self.max_heartbeat_age_s:
            return False, f"event loop silent for {age:.0f} s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        """Readiness: a verified model is loaded, outputs are being delivered and input
        partitions are assigned."""
        if not self.model_loaded:
            return False, "model not loaded"
        stalled = self.delivery_stalled_s()
        if stalled > self.delivery_stall_s:
            return False, f"outputs undelivered for {stalled:.0f} s (broker unreachable?)"
        if self.assigned_partitions <= 0:
            return False, "no input partition assigned (yet)"
        return self.live()


def _json_view(view: Callable[[], Any], start: Callable[..., Any]) -> Iterable[bytes]:
    try:
        body, status = orjson.dumps(view()), "200 OK"
    except Exception as exc:  # a view bug must not take the probes or the worker down
        body, status = orjson.dumps({"error": repr(exc)}), "500 Internal Server Error"
    start(status, [("Content-Type", "application/json")])
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would flood the worker log


class MetricsServer:
    """HTTP server for metrics and probes.

    Parameters
    ----------
    registry : CollectorRegistry
        Registry to expose on ``/metrics``.
    health : HealthState
        Probe state.
    host, port : str, int
        Where to listen (port 0 picks a free port; see :attr:`port`).
    views : mapping, optional
        ``{path: callable}``: each path answers the callable's result as JSON (called on the
        HTTP thread; a failure answers 500 with the error, the worker goes on).
    setting : str
        The setting ``port`` came from, named when the port cannot be bound.

    Raises
    ------
    PipelineConfigError
        When ``host:port`` cannot be bound (in use, or not an address of this machine).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        health: HealthState,
        host: str = "0.0.0.0",
        port: int = 9102,
        views: Mapping[str, Callable[[], Any]] | None = None,
        setting: str = "worker.metrics_port (--metrics-port)",
    ) -> None:
        self.health = health
        self.views = dict(views or {})
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path in self.views:
                return _json_view(self.views[path], start)
            if path in ("/healthz", "/readyz"):
                ok, why = health.live() if path == "/healthz" else health.ready()
                start(
                    "200 OK" if ok else "503 Service Unavailable",
                    [("Content-Type", "text/plain; charset=utf-8")],
                )
                return [why.encode() + b"\n"]
            if path not in METRICS_PATHS:
                start("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
                known = sorted({*METRICS_PATHS, "/healthz", "/readyz", *self.views} - {"/"})
                return [f"no such path: {path}; this server answers {known}\n".encode()]
            return metrics_app(environ, start)  # type: ignore[no-any-return]

        try:
            self._httpd = make_server(
                host, port, app, server_class=_Server, handler_class=_QuietHandler
            )
        except OSError as exc:  # typically a second worker on the same port
            raise PipelineConfigError(
                f"{setting}: cannot listen on {host}:{port} ({exc.strerror or exc}); another "
                "process (a second worker?) may hold it: set a free port, or 0 for none"
            ) from exc
        self.port = int(self._httpd.server_port)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> MetricsServer:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
