"""Prometheus configs and rules: promtool accepts them, every alert is unit-tested both ways,
documented, and every expression uses only the worker's metric contract."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.unit.deploy.checks import (
    DOCS_OPERATIONS,
    INGEST_JOB,
    JOB,
    PROM,
    contract_problems,
    load_yaml,
    markdown_anchors,
    promtool,
    recorded_names,
)
from tests.unit.deploy.promql_names import selectors

CONFIGS = ("prometheus.yml", "prometheus-compose.yml")
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROM / "rules" / "tests").glob("*.yml"))


def _run(*args: str) -> None:
    proc = subprocess.run(
        [promtool(), *args], cwd=PROM, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _rules() -> list[dict[str, Any]]:
    return [r for f in RULE_FILES for g in load_yaml(f)["groups"] for r in g["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


@pytest.mark.parametrize("config", CONFIGS)
def test_promtool_check_config(config: str) -> None:
    _run("check", "config", config)


def test_promtool_check_rules() -> None:
    _run("check", "rules", *(str(f.relative_to(PROM)) for f in RULE_FILES))


def test_promtool_test_rules() -> None:
    _run("test", "rules", *(str(f.relative_to(PROM)) for f in RULE_TESTS))


def test_the_required_alerts_exist() -> None:
    assert {a["alert"] for a in _alerts()} == {
        "EcgWorkerDown",
        "EcgNoWindowsScored",
        "EcgConsumerLagHigh",
        "EcgDeadLetterRateHigh",
        "EcgAnomalyRatioHigh",
        "EcgEndToEndLatencyHigh",
        "EcgModelNotLoaded",
        "EcgDeliveryStalled",
        "EcgManyFeedsStale",
        "EcgModelRefused",
        "EcgDataDrift",
        "EcgIngestDown",
        "EcgIngestNoBeats",
        "EcgIngestDeadLetterRateHigh",
    }


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {a["alert"] for a in _alerts()}
    assert alerts - fires == set(), "alerts without a test where they fire"
    assert alerts - quiet == set(), "alerts without a test where they stay quiet"


def test_every_alert_has_severity_summary_description_and_runbook() -> None:
    anchors = markdown_anchors(DOCS_OPERATIONS.read_text(encoding="utf-8"))
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        ann = alert["annotations"]
        assert ann.get("summary") and ann.get("description"), name
        m = re.fullmatch(r"docs/operations\.md#([a-z0-9-]+)", ann.get("runbook_url", ""))
        assert m, f"{name}: runbook_url {ann.get('runbook_url')!r}"
        assert m.group(1) in anchors, f"{name}: no section #{m.group(1)} in docs/operations.md"


def test_rules_use_only_contract_metrics_and_defined_recordings() -> None:
    recorded = recorded_names()
    problems = {
        r.get("alert") or r["record"]: p
        for r in _rules()
        if (p := contract_problems(r["expr"], recorded))
    }
    assert problems == {}


def test_rule_unit_tests_feed_only_contract_series() -> None:
    # A test fed with a misspelt series would check nothing real.
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for series in case["input_series"]:
                assert contract_problems(series["series"]) == [], (path.name, series["series"])


def test_alerts_match_the_jobs_every_scrape_config_uses() -> None:
    jobs = {
        m[2] for a in _alerts() for s in selectors(a["expr"]) for m in s.matchers if m[0] == "job"
    }
    assert jobs == {JOB, INGEST_JOB}
    for config in CONFIGS:
        names = {c["job_name"] for c in load_yaml(PROM / config)["scrape_configs"]}
        assert jobs <= names, config


def test_host_config_has_static_targets_and_file_sd() -> None:
    job = next(
        c for c in load_yaml(PROM / "prometheus.yml")["scrape_configs"] if c["job_name"] == JOB
    )
    assert job["static_configs"][0]["targets"] == ["localhost:9102"]
    assert job["file_sd_configs"][0]["files"] == ["targets/*.json"]
    files = sorted((PROM / "targets").glob("*.json"))
    assert files, "ship at least one (empty) file_sd file"
    for f in files:  # Prometheus rejects the whole file on a bad entry
        for group in json.loads(f.read_text(encoding="utf-8")):
            assert set(group) <= {"targets", "labels"}
            assert {"job", "instance"}.isdisjoint(group.get("labels", {}))


def test_host_config_scrapes_the_ingest_stage_on_its_port() -> None:
    # The compose config's ingest job: test_deploy_compose.py.
    job = next(
        c
        for c in load_yaml(PROM / "prometheus.yml")["scrape_configs"]
        if c["job_name"] == INGEST_JOB
    )
    assert job["static_configs"][0]["targets"] == ["localhost:9103"]


def test_compose_config_discovers_every_worker_replica_by_dns() -> None:
    job = next(
        c
        for c in load_yaml(PROM / "prometheus-compose.yml")["scrape_configs"]
        if c["job_name"] == JOB
    )
    assert job["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 9102, "refresh_interval": "15s"}
    ]
