"""The one YAML configuration file, with ``ECGWATCH_<SECTION>__<KEY>`` environment overrides.

Sections: ``kafka`` (bootstrap, group_id, topics.*, security_protocol, sasl_*, ssl_*),
``worker`` (registry, batching, metrics, device, processes, …), ``ingest`` (the
beat-extraction stage: group_id, metrics_port, max_chunk_bytes, idle_s, batch_*) and
``alerts`` (mode, update_interval_s, end_after_normal, end_after_s, cooldown_s,
critical_ratio). Secrets
such as the SASL password are read from the environment only and are never accepted in the
file.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dacite
import yaml

from pipeline.errors import PipelineConfigError
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
            "processes",
            "delivery_stall_s",
            "model_poll_s",
            "drift_window",
            "shadow_model",
        )
    },
    "ingest": {
        k: f"ingest.{k}"
        for k in (
            "group_id",
            "metrics_port",
            "max_chunk_bytes",
            "idle_s",
            "batch_size",
            "batch_timeout_s",
        )
    },
    "alerts": {
        "mode": "alert_mode",
        "cooldown_s": "cooldown_s",
        "critical_ratio": "critical_ratio",
        "update_interval_s": "update_interval_s",
        "end_after_normal": "end_after_normal",
        "end_after_s": "end_after_s",
        "stale_after_s": "stale_after_s",
    },
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


def _env_value(value: Any) -> Any:
    """An environment value as YAML reads it (for number and bool fields only)."""
    if not isinstance(value, _EnvText):
        return value
    if value == "":
        return ""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return str(value)


def _not_bool(expected: type, value: Any) -> Any:
    # bool is an int subclass: without this, ``batch_size: true`` would be accepted as 1.
    if isinstance(value, bool):
        raise dacite.WrongTypeError(field_type=expected, value=value)
    return value


def _as_int(value: Any) -> Any:
    return _not_bool(int, _env_value(value))


def _as_float(value: Any) -> Any:
    # ``batch_timeout_s: 1`` is an int to YAML; a float field takes it as 1.0.
    value = _not_bool(float, _env_value(value))
    return float(value) if isinstance(value, int) else value


def _as_text(value: Any) -> Any:
    # A text field takes a number as its text (``group_id: 7``); env text stays as written.
    value = _not_bool(str, value)
    return str(value) if isinstance(value, (str, int, float)) else value


#: dacite builds the settings (nested ``security`` and ``topics``, defaults, the type check);
#: the hooks add what its ``isinstance`` check lacks: int is not bool, a float field takes an
#: int, environment text is YAML-parsed only where a number or bool is expected.
_DACITE = dacite.Config(
    type_hooks={int: _as_int, float: _as_float, bool: _env_value, str: _as_text},
    strict=True,
)

#: WorkerSettings field -> its key in the file, for messages (``security.protocol`` ->
#: ``kafka.security_protocol``).
_FILE_KEY: dict[str, str] = {
    field: f"{section}.{key}" for section, keys in _LAYOUT.items() for key, field in keys.items()
}


def _file_key(field_path: str) -> str:
    if field_path in _FILE_KEY:
        return _FILE_KEY[field_path]
    head, _, rest = field_path.partition(".")  # ``topics.windows`` -> ``kafka.topics.windows``
    return f"{_FILE_KEY.get(head, head)}.{rest}"


def _message(exc: dacite.DaciteError) -> str:
    """dacite's error as one line naming the file's key, the value and what is expected."""
    if not isinstance(exc, dacite.WrongTypeError) or not exc.field_path:
        return f"configuration: {exc}"
    key, value = _file_key(exc.field_path), exc.value
    if isinstance(value, _EnvText):
        value = str(value)  # the message says str, not the marker class
    if dataclasses.is_dataclass(exc.field_type):
        names = "/".join(f.name for f in dataclasses.fields(exc.field_type))
        return f"{key}: expected a mapping of {names} names, got {type(value).__name__}"
    default = functools.reduce(getattr, exc.field_path.split("."), WorkerSettings())
    expected = getattr(exc.field_type, "__name__", exc.field_type)
    return (
        f"{key}: {value!r} is a {type(value).__name__}, expected {expected} (default {default!r})"
    )


def _fields(data: Mapping[str, Any], from_file: Mapping[str, Any]) -> dict[str, Any]:
    """The sections' keys as ``WorkerSettings`` fields (``kafka.sasl_username`` ->
    ``security.sasl_username``); refuses unknown sections and keys, and secrets in the file."""
    out: dict[str, Any] = {}
    for section, values in data.items():
        if section not in _LAYOUT:
            raise ConfigError(f"{section}: unknown section; allowed: {sorted(_LAYOUT)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping, got {type(values).__name__}")
        in_file = from_file.get(section)
        for key, value in values.items():
            full = f"{section}.{key}"
            if (
                any(w in str(key).lower() for w in _SECRET_WORDS)
                and isinstance(in_file, dict)
                and key in in_file
            ):
                raise ConfigError(
                    f"{full}: secrets are read from the environment only "
                    f"({ENV_PREFIX}{section.upper()}__{str(key).upper()})"
                )
            if key not in _LAYOUT[section]:
                raise ConfigError(f"{full}: unknown key; allowed: {sorted(_LAYOUT[section])}")
            field, _, sub = _LAYOUT[section][key].partition(".")
            if sub:
                out.setdefault(field, {})[sub] = value
            else:
                out[field] = value
    _check_topic_keys(out.get("topics"))
    return out


def _check_topic_keys(topics: Any) -> None:
    # dacite's strict mode would refuse an unknown topic too, but without saying where.
    if not isinstance(topics, Mapping):
        return  # not a mapping: dacite's type check says so
    allowed = [f.name for f in dataclasses.fields(TopicNames)]
    for k in topics:
        if k not in allowed:
            raise ConfigError(f"kafka.topics.{k}: unknown topic; allowed: {allowed}")


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
    loaded: dict[str, Any] = {}
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
        # Checked before flags and variables are merged in: they would replace a section
        # that is not a mapping, and the file's mistake would go unnoticed.
        for section, values in loaded.items():
            if values is not None and not isinstance(values, dict):
                raise ConfigError(
                    f"{p}: {section}: expected a mapping, got {type(values).__name__}"
                )
    data = _merge(loaded, _env_overrides(os.environ if environ is None else environ))
    fields = _fields(_merge(data, overrides or {}), loaded)
    try:
        settings = dacite.from_dict(WorkerSettings, fields, _DACITE)
    except dacite.DaciteError as exc:
        raise ConfigError(_message(exc)) from None
    except PipelineConfigError as exc:  # the settings' own range checks
        raise ConfigError(str(exc)) from exc
    for name, topic in dataclasses.asdict(settings.topics).items():
        if not topic:
            raise ConfigError(f"kafka.topics.{name}: {topic!r} must be a non-empty topic name")
    return settings
