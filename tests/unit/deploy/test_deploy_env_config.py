"""Every ECGWATCH_<SECTION>__<KEY> variable that compose and Kubernetes set is a real setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ecgwatch.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[3]


def _env_maps() -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    for name, svc in compose["services"].items():
        env: Any = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        found.append((f"compose:{name}", {k: str(v) for k, v in env.items()}))
    for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                found.append((f"k8s:{path.name}", dict(doc.get("data") or {})))
    return found


@pytest.mark.parametrize(
    ("where", "env"), _env_maps(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_env_overrides_are_valid_settings(where: str, env: dict[str, str]) -> None:
    overrides = {k: v for k, v in env.items() if k.startswith("ECGWATCH_") and "__" in k}
    settings = load_settings(environ=overrides)  # raises ConfigError on an unknown key
    if "ECGWATCH_KAFKA__BOOTSTRAP" in overrides:
        assert settings.bootstrap == overrides["ECGWATCH_KAFKA__BOOTSTRAP"]


def test_unknown_env_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="kafka.bootstrap_servers: unknown key"):
        load_settings(environ={"ECGWATCH_KAFKA__BOOTSTRAP_SERVERS": "x:1"})
