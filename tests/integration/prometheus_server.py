"""Run Debian's Prometheus for a test: temp dir, free port, the project's rules, short intervals.

The live observability test (issue 4, item 5) scrapes a real worker with this; its own test
checks it against a stand-in exporter. ``for:`` durations of the alerts are shortened (a test
cannot wait minutes); everything else in the rules is used as shipped.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy.checks import INGEST_JOB, JOB

__all__ = ["PROMETHEUS_DIR", "PrometheusServer", "free_port", "running_prometheus"]

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrometheusServer:
    """A running Prometheus: its base URL and small HTTP API helpers."""

    url: str
    process: subprocess.Popen[bytes]

    def _get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector result of ``expr`` (list of {metric, value})."""
        return list(self._get("/api/v1/query", query=expr)["result"])

    def scalar(self, expr: str) -> float | None:
        """The single value of ``expr``, or None while it has no result."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) with labels and state."""
        return list(self._get("/api/v1/alerts")["alerts"])

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "") -> Any:
        """Poll ``predicate()`` until it returns something truthy; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.25)


def _short_rules(dest: Path, alert_for: str) -> list[str]:
    files = []
    for src in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        doc = yaml.safe_load(src.read_text(encoding="utf-8"))
        for group in doc["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = alert_for
        (dest / src.name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        files.append(str(dest / src.name))
    return files


@contextmanager
def running_prometheus(
    targets: Sequence[str],
    tmp_path: Path,
    *,
    alert_for: str = "2s",
    startup_s: float = 30.0,
    ingest_targets: Sequence[str] = (),
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping ``targets`` (host:port) every second as job ecgwatch-worker,
    and ``ingest_targets`` (beat-extraction stages) as job ecgwatch-ingest."""
    binary = shutil.which("prometheus")
    if binary is None:
        import pytest

        pytest.skip("Debian's prometheus not installed (./run setup installs it)")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": _short_rules(rules_dir, alert_for),
        "scrape_configs": [
            {
                "job_name": job,
                "scrape_timeout": "900ms",
                "static_configs": [{"targets": list(hosts)}],
            }
            for job, hosts in ((JOB, targets), (INGEST_JOB, ingest_targets))
            if hosts
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "Prometheus did not start:\n" + (tmp_path / "prometheus.log").read_text()
                )
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
