"""Grafana: the dashboard parses, every panel queries the provisioned data source, every query
uses only the worker's metric contract, and the panels the operators need are there."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.deploy.checks import DEPLOY, contract_problems, load_yaml, recorded_names

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "ecgwatch.json"
DS_VAR = "${datasource}"


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels() -> list[dict[str, Any]]:
    out = []
    for p in _dashboard()["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows hold their panels
    return [p for p in out if p["type"] != "row"]


def test_every_panel_has_the_datasource_and_queries() -> None:
    for p in _panels():
        assert p["datasource"] == {"type": "prometheus", "uid": DS_VAR}, p["title"]
        assert p["targets"], p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DS_VAR, p["title"]
            assert t["expr"].strip(), p["title"]


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine


def test_queries_use_only_contract_metrics() -> None:
    recorded = recorded_names()
    problems = {
        f"{p['title']}/{t['refId']}": probs
        for p in _panels()
        for t in p["targets"]
        if (probs := contract_problems(t["expr"], recorded))
    }
    assert problems == {}


def test_the_operators_panels_are_there() -> None:
    titles = {p["title"] for p in _panels()}
    assert {
        "Windows/s by outcome",
        "Anomaly ratio",
        "Alerts/s by severity",
        "Dead-lettered/s by reason",
        "Reconstruction error distribution",
        "Reconstruction error vs threshold",
        "Scoring batch size",
        "Scoring duration",
        "End-to-end latency",
        "Consumer lag by partition",
        "Model version",
        "Model threshold",
        "Workers up",
        "Devices active / stale",
        "Open alert episodes by kind",
    } <= titles
    heatmap = next(p for p in _panels() if p["title"] == "Reconstruction error distribution")
    assert heatmap["type"] == "heatmap"
    assert heatmap["targets"][0]["format"] == "heatmap"
    for title in ("Scoring duration", "End-to-end latency"):
        legends = {
            t["legendFormat"] for p in _panels() if p["title"] == title for t in p["targets"]
        }
        assert legends == {"p50", "p95", "p99"}, title


def test_datasource_variable_defaults_to_the_provisioned_datasource() -> None:
    (var,) = [v for v in _dashboard()["templating"]["list"] if v["name"] == "datasource"]
    assert var["type"] == "datasource" and var["query"] == "prometheus"
    (ds,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yaml")["datasources"]
    assert ds["type"] == "prometheus"
    assert var["current"]["value"] == ds["uid"]


def test_dashboard_provider_points_at_a_folder_holding_the_dashboard() -> None:
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "ecgwatch.yaml")["providers"]
    assert provider["type"] == "file"
    # compose mounts deploy/grafana/dashboards at this path (checked in the compose test).
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    assert _dashboard()["uid"] == "ecgwatch"
