"""Kubernetes manifests: they parse (every document), kustomize lists exactly them, labels and
selectors match, probes hit the worker's real endpoints, and the monitor scrapes the job the
alerts expect."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.unit.deploy.checks import (
    DEPLOY,
    INGEST_JOB,
    JOB,
    load_yaml,
    load_yaml_all,
    parse_ecgwatch_args,
)

K8S = DEPLOY / "k8s"
METRICS_PORT = 9102


def _docs() -> dict[tuple[str, str], dict[str, Any]]:
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_all(path):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path.name
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in docs, f"duplicate {key}"
            docs[key] = doc
    return docs


def _pod_spec(kind: str, name: str) -> dict[str, Any]:
    return _docs()[(kind, name)]["spec"]["template"]["spec"]


def _worker() -> dict[str, Any]:
    (container,) = _pod_spec("Deployment", "ecgwatch-worker")["containers"]
    return container


def test_kustomization_lists_every_manifest() -> None:
    kust = load_yaml(K8S / "kustomization.yaml")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files
    assert {k for k, _ in _docs()} >= {
        "Namespace",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Job",
        "Deployment",
        "Service",
        "ServiceMonitor",
    }


def test_kubectl_renders_the_kustomization() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the manifests are still parsed by the other tests")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(rendered) == len(_docs())
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "ecgwatch", doc["metadata"]["name"]
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert c["image"].startswith("ecgwatch:"), c["image"]


def test_selectors_match_pod_labels() -> None:
    docs = _docs()
    deploy = docs[("Deployment", "ecgwatch-worker")]
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = docs[("Service", "ecgwatch-worker")]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = docs[("ServiceMonitor", "ecgwatch-worker")]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    assert wanted.items() <= service["metadata"]["labels"].items()


def test_service_and_monitor_scrape_the_metrics_port_as_the_alerts_job() -> None:
    docs = _docs()
    (port,) = _worker()["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", METRICS_PORT)
    service = docs[("Service", "ecgwatch-worker")]
    (sport,) = service["spec"]["ports"]
    assert sport["name"] == "metrics" and sport["targetPort"] == port["name"]
    # not-ready workers (no model) must still be scraped, or EcgModelNotLoaded cannot fire.
    assert service["spec"]["publishNotReadyAddresses"] is True
    monitor = docs[("ServiceMonitor", "ecgwatch-worker")]["spec"]
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] == sport["name"] and endpoint["path"] == "/metrics"
    assert service["metadata"]["labels"][monitor["jobLabel"]] == JOB


def test_probes_hit_liveness_and_readiness_endpoints() -> None:
    worker = _worker()
    expected = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in expected.items():
        get = worker[probe]["httpGet"]
        assert (get["path"], get["port"]) == (path, "metrics"), probe
    args = worker["args"]
    assert args[args.index("--metrics-port") + 1] == str(METRICS_PORT)


def test_pods_have_resources_non_root_and_the_registry() -> None:
    docs = _docs()
    (pvc_name,) = [n for k, n in docs if k == "PersistentVolumeClaim"]
    (cm_name,) = [n for k, n in docs if k == "ConfigMap"]
    for kind, name, read_only in (
        ("Deployment", "ecgwatch-worker", True),
        ("Deployment", "ecgwatch-ingest", True),
        ("Job", "ecgwatch-train", False),
    ):
        spec = _pod_spec(kind, name)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        (c,) = spec["containers"]
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        assert c["resources"]["limits"]["memory"], name
        assert {e["configMapRef"]["name"] for e in c["envFrom"] if "configMapRef" in e} == {cm_name}
        volumes = {v["name"]: v for v in spec["volumes"]}
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/models"]
        assert volumes[mount["name"]]["persistentVolumeClaim"]["claimName"] == pvc_name
        assert mount.get("readOnly", False) is read_only, name
        assert c["args"][c["args"].index("--registry") + 1] == "/models"


def test_rollout_does_not_surge_past_the_partitions() -> None:
    update = _docs()[("Deployment", "ecgwatch-worker")]["spec"]["strategy"]["rollingUpdate"]
    assert update == {"maxSurge": 0, "maxUnavailable": 1}


def test_train_job_never_restarts_in_place() -> None:
    assert _pod_spec("Job", "ecgwatch-train")["restartPolicy"] == "Never"


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Deployment", "ecgwatch-worker"),
        ("Deployment", "ecgwatch-ingest"),
        ("Job", "ecgwatch-train"),
    ],
)
def test_container_args_are_accepted_by_ecgwatch(kind: str, name: str) -> None:
    (container,) = _pod_spec(kind, name)["containers"]
    parse_ecgwatch_args(container["args"])


def test_ingest_probes_its_own_metrics_port() -> None:
    (c,) = _pod_spec("Deployment", "ecgwatch-ingest")["containers"]
    (port,) = c["ports"]
    assert c["args"][c["args"].index("--metrics-port") + 1] == str(port["containerPort"])
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert (c[probe]["httpGet"]["path"], c[probe]["httpGet"]["port"]) == (path, "metrics")


def test_worker_takes_the_kafka_password_from_an_optional_secret() -> None:
    # The config loader refuses secrets in files; the Secret's keys become environment
    # variables (ECGWATCH_KAFKA__SASL_PASSWORD), and a cluster without one still starts.
    refs = [e["secretRef"] for e in _worker()["envFrom"] if "secretRef" in e]
    assert refs == [{"name": "ecgwatch-kafka", "optional": True}]


def test_ingest_service_and_monitor_scrape_its_metrics_port_as_job_ecgwatch_ingest() -> None:
    docs = _docs()
    (container,) = _pod_spec("Deployment", "ecgwatch-ingest")["containers"]
    (port,) = container["ports"]
    service = docs[("Service", "ecgwatch-ingest")]
    pod_labels = docs[("Deployment", "ecgwatch-ingest")]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (sport,) = service["spec"]["ports"]
    assert sport["targetPort"] == port["name"] and sport["port"] == port["containerPort"]
    monitor = docs[("ServiceMonitor", "ecgwatch-ingest")]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] == sport["name"] and endpoint["path"] == "/metrics"
    assert service["metadata"]["labels"][monitor["jobLabel"]] == INGEST_JOB
