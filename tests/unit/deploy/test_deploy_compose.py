"""Dockerfile and compose stack, checked statically (no Docker engine here): the YAML parses,
every referenced file exists, service names and ports agree across the files."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.settings import DEFAULT_TOPICS
from pipeline.topics import INGEST_STATE_CONFIGS
from tests.unit.deploy.checks import (
    DEPLOY,
    PROM,
    ROOT,
    load_yaml,
    parse_ecgwatch_args,
)

COMPOSE = DEPLOY / "compose.yaml"
METRICS_PORT = 9102
TOPICS = tuple(getattr(DEFAULT_TOPICS, f.name) for f in dataclasses.fields(DEFAULT_TOPICS))


def _services() -> dict[str, Any]:
    return load_yaml(COMPOSE)["services"]


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _binds(service: dict[str, Any]) -> dict[str, str]:
    """host path (resolved) -> container path, for bind mounts only."""
    binds = {}
    for vol in service.get("volumes", []):
        src, dst = vol.split(":")[:2]
        if src.startswith((".", "/")):
            binds[str((DEPLOY / src).resolve())] = dst
    return binds


def test_the_stack_has_its_services() -> None:
    assert set(_services()) == {
        "kafka",
        "topics",
        "train",
        "worker",
        "ingest",
        "prometheus",
        "grafana",
    }
    assert _services()["kafka"]["image"].startswith("apache/kafka:")


def test_depends_on_names_services_with_valid_conditions() -> None:
    services = _services()
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        deps = deps if isinstance(deps, dict) else {d: {} for d in deps}
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec.get("condition", "service_started") in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"


def test_every_bind_mount_and_build_file_exists() -> None:
    for name, svc in _services().items():
        for src in _binds(svc):
            assert Path(src).exists(), f"{name}: {src}"
        if "build" in svc:
            ctx = (DEPLOY / svc["build"]["context"]).resolve()
            assert ctx == ROOT and (ctx / svc["build"]["dockerfile"]).is_file()
    assert {
        v.split(":")[0]
        for s in _services().values()
        for v in s.get("volumes", [])
        if not v.startswith((".", "/"))
    } <= set(load_yaml(COMPOSE)["volumes"])


def test_worker_scales_and_is_scraped_on_its_metrics_port() -> None:
    worker = _services()["worker"]
    # --scale needs no fixed host port and no fixed container name.
    assert "ports" not in worker and "container_name" not in worker
    args = worker["command"]
    assert args[args.index("--metrics-port") + 1] == str(METRICS_PORT)
    assert worker["expose"] == [str(METRICS_PORT)]
    (dns,) = next(
        c
        for c in load_yaml(PROM / "prometheus-compose.yml")["scrape_configs"]
        if c["job_name"] == "ecgwatch-worker"
    )["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["port"] == METRICS_PORT


def test_worker_and_train_reach_kafka_and_share_the_registry() -> None:
    s = _services()
    host, port = s["worker"]["environment"]["ECGWATCH_KAFKA__BOOTSTRAP"].split(":")
    assert host == "kafka"
    advertised = s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"//kafka:{port}" in advertised
    assert f"--bootstrap-server kafka:{port}" in s["topics"]["command"][0]
    assert "models:/models:ro" in s["worker"]["volumes"]
    assert "models:/models" in s["train"]["volumes"]


def test_topics_job_creates_the_design_topics() -> None:
    script = _services()["topics"]["command"][0]
    for topic in TOPICS:
        assert re.search(rf"(^|\s){re.escape(topic)}(;|\s|$)", script), topic
    assert "--if-not-exists" in script
    for key, value in INGEST_STATE_CONFIGS.items():  # the state topic as ecgwatch makes it
        assert f"--config {key}={value}" in script


def test_ingest_stage_is_scraped_and_its_command_accepted() -> None:
    ingest = _services()["ingest"]
    args = ingest["command"]
    parse_ecgwatch_args(args)
    port = int(args[args.index("--metrics-port") + 1])
    assert ingest["expose"] == [str(port)] and "ports" not in ingest
    assert "models:/models:ro" in ingest["volumes"]
    (dns,) = next(
        c
        for c in load_yaml(PROM / "prometheus-compose.yml")["scrape_configs"]
        if c["job_name"] == "ecgwatch-ingest"
    )["dns_sd_configs"]
    assert dns["names"] == ["ingest"] and dns["port"] == port


def test_prometheus_mounts_its_config_and_rules_where_the_config_expects_them() -> None:
    prom = _services()["prometheus"]
    binds = _binds(prom)
    config_path = next(
        a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file=")
    )
    assert binds[str(PROM / "prometheus-compose.yml")] == config_path
    rules_dir = str(Path(config_path).parent / "rules")
    assert binds[str(PROM / "rules")] == rules_dir
    for rule_file in load_yaml(PROM / "prometheus-compose.yml")["rule_files"]:
        assert (PROM / rule_file).is_file()
    assert "9090:9090" in prom["ports"]


def test_grafana_reads_the_provisioning_and_the_datasource_reaches_prometheus() -> None:
    grafana = _services()["grafana"]
    binds = _binds(grafana)
    g = DEPLOY / "grafana"
    assert binds[str(g / "provisioning")] == "/etc/grafana/provisioning"
    (provider,) = load_yaml(g / "provisioning" / "dashboards" / "ecgwatch.yaml")["providers"]
    assert binds[str(g / "dashboards")] == provider["options"]["path"]
    (ds,) = load_yaml(g / "provisioning" / "datasources" / "prometheus.yaml")["datasources"]
    url = urlsplit(ds["url"])
    assert url.hostname == "prometheus" and url.hostname in _services()
    assert f"{url.port}:{url.port}" in _services()["prometheus"]["ports"]


def test_dockerfile_runs_as_non_root_with_the_registry_volume() -> None:
    instr = _dockerfile()
    users = [a for i, a in instr if i == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert any(i == "VOLUME" and "/models" in a for i, a in instr)
    assert ("EXPOSE", str(METRICS_PORT)) in instr
    assert ("ENTRYPOINT", '["ecgwatch"]') in instr
    # The build copies the context; .dockerignore must keep what `pip install .` needs.
    assert ("COPY", ". /src") in instr
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {"pyproject.toml", "README.md", "detector", "training", "pipeline", "ecgwatch"}
    assert needed.isdisjoint(ignored)
    assert {".git", ".venv", "models"} <= ignored  # local state stays out of the image


def test_container_commands_are_accepted_by_ecgwatch() -> None:
    # Skips until the worker (issue 3) and train commands exist; then catches drift.
    parse_ecgwatch_args(_services()["worker"]["command"])


def test_train_command_is_accepted_by_ecgwatch() -> None:
    script = _services()["train"]["command"][0]
    argv = shlex.split(script.split("exec ecgwatch", 1)[1])
    parse_ecgwatch_args(argv)
