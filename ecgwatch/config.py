"""The one YAML configuration file, with ``ECGWATCH_<SECTION>__<KEY>`` environment overrides.

Sections: ``kafka`` (bootstrap, group_id, topics.*, security_protocol, sasl_*, ssl_*),
``worker`` (registry, batching, metrics, device, …) and ``alerts`` (cooldown_s,
critical_ratio). Secrets such as the SASL password are read from the environment only and are
never accepted in the file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineConfigError
from pipeline.security import KafkaSecurity
from pipeline.settings import TopicNames, WorkerSettings

__all__ = ["ConfigError", "load_settings"]

ENV_PREFIX = "ECGWATCH_"

#: section -> key -> WorkerSettings field (``topics`` is nested).
_LAYOUT: dict[str, dict[str, str]] = {
    "kafka": {
        "bootstrap": "bootstrap",
        "group_id": "group_id",
        "topics": "topics",
        "session_timeout_s": "session_timeout_s",
        # -> KafkaSecurity fields (pipeline.security); the password from the environment only
        "security_protocol": "security.protocol",
        "sasl_mechanism": "security.sasl_mechanism",
        "sasl_username": "security.sasl_username",
        "sasl_password": "security.sasl_password",
        "ssl_cafile": "security.ssl_cafile",
        "ssl_certfile": "security.ssl_certfile",
        "ssl_keyfile": "security.ssl_keyfile",
    },
    "worker": {
        k: k
        for k in (
            "registry",
            "model_version",
            "batch_size",
            "batch_timeout_s",
            "max_message_bytes",
            "metrics_port",
            "metrics_host",
            "device",
            "engine",
            "data_dir",
            "started_file",
            "commit_interval_s",
            "log_level",
        )
    },
    "alerts": {"cooldown_s": "cooldown_s", "critical_ratio": "critical_ratio"},
}
_SECRET_WORDS = ("password", "secret", "token")


class ConfigError(PipelineConfigError):
    """The configuration file or an override is invalid; the message names key and value."""


class _EnvText(str):
    """A raw environment value: parsed as YAML only where a number or bool is expected, so
    ``ECGWATCH_KAFKA__GROUP_ID=007`` stays ``"007"`` and ``...=yes`` stays ``"yes"``."""


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        value = _EnvText(raw)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _coerce(key: str, value: Any, default: Any) -> Any:
    if isinstance(value, _EnvText):
        if isinstance(default, str):
            return str(value)
        try:
            value = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            value = str(value)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        value = str(value) if ok else value
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"{key}: {value!r} is a {type(value).__name__}, expected "
            f"{type(default).__name__} (default {default!r})"
        )
    return value


def load_settings(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> WorkerSettings:
    """Build validated worker settings.

    Precedence (lowest first): defaults, the YAML file, environment variables
    (``ECGWATCH_WORKER__BATCH_SIZE=500``), then ``overrides`` (command-line flags, given as
    ``{"section": {"key": value}}``).

    Raises
    ------
    ConfigError
        Naming the key, the value and what is allowed.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"--config: {p} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of sections {sorted(_LAYOUT)}")
        data = loaded
    data = _merge(data, _env_overrides(os.environ if environ is None else environ))
    data = _merge(data, overrides or {})
    defaults = WorkerSettings()
    kwargs: dict[str, Any] = {}
    security: dict[str, Any] = {}
    for section, values in data.items():
        if section not in _LAYOUT:
            raise ConfigError(f"{section}: unknown section; allowed: {sorted(_LAYOUT)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping, got {type(values).__name__}")
        for key, value in values.items():
            full = f"{section}.{key}"
            if (
                any(w in str(key).lower() for w in _SECRET_WORDS)
                and path is not None
                and key in (loaded.get(section) or {})
            ):
                raise ConfigError(
                    f"{full}: secrets are read from the environment only "
                    f"({ENV_PREFIX}{section.upper()}__{str(key).upper()})"
                )
            if key not in _LAYOUT[section]:
                raise ConfigError(f"{full}: unknown key; allowed: {sorted(_LAYOUT[section])}")
            field = _LAYOUT[section][key]
            if field == "topics":
                kwargs["topics"] = _topics(full, value)
            elif field.startswith("security."):
                name = field.split(".", 1)[1]
                security[name] = _coerce(full, value, getattr(defaults.security, name))
            else:
                kwargs[field] = _coerce(full, value, getattr(defaults, field))
    try:
        if security:
            kwargs["security"] = KafkaSecurity(**security)
        return dataclasses.replace(defaults, **kwargs)
    except PipelineConfigError as exc:
        raise ConfigError(str(exc)) from exc


def _topics(key: str, value: Any) -> TopicNames:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of windows/scores/alerts/dlq names")
    allowed = [f.name for f in dataclasses.fields(TopicNames)]
    for k, v in value.items():
        if k not in allowed:
            raise ConfigError(f"{key}.{k}: unknown topic; allowed: {allowed}")
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{key}.{k}: {v!r} must be a non-empty topic name")
    return TopicNames(**value)
