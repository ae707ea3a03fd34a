"""``ecgwatch.config``: YAML file, ``ECGWATCH_<SECTION>__<KEY>`` environment, flag overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ecgwatch.config import ConfigError, load_settings
from pipeline.settings import TopicNames, WorkerSettings


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ecgwatch.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_env() -> None:
    assert load_settings(environ={}) == WorkerSettings()


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, "worker:\n  batch_size: 100\n  batch_timeout_s: 0.5\n")
    env = {"ECGWATCH_WORKER__BATCH_SIZE": "200"}
    assert load_settings(cfg, environ={}).batch_size == 100
    s = load_settings(cfg, environ=env)
    assert (s.batch_size, s.batch_timeout_s) == (200, 0.5)
    s = load_settings(cfg, {"worker": {"batch_size": 300}}, environ=env)
    assert (s.batch_size, s.batch_timeout_s) == (300, 0.5)


def test_file_sections(tmp_path: Path) -> None:
    cfg = _yaml(
        tmp_path,
        "kafka:\n  bootstrap: k1:9092,k2:9092\n  group_id: g\n  topics:\n    windows: in\n"
        "alerts:\n  cooldown_s: 5\n  critical_ratio: 3\n",
    )
    s = load_settings(cfg, environ={})
    assert s.bootstrap == "k1:9092,k2:9092" and s.group_id == "g"
    assert s.topics == TopicNames(windows="in")
    assert (s.cooldown_s, s.critical_ratio) == (5.0, 3.0)


def test_env_topics_and_numbers() -> None:
    s = load_settings(
        environ={
            "ECGWATCH_KAFKA__TOPICS__WINDOWS": "w",
            "ECGWATCH_KAFKA__TOPICS__DLQ": "d",
            "ECGWATCH_WORKER__METRICS_PORT": "9200",
            "ECGWATCH_WORKER__BATCH_TIMEOUT_S": "1",
            "ECGWATCH_TEST_BOOTSTRAP": "ignored: no section separator",
            "OTHER__X": "ignored",
        }
    )
    assert s.topics == TopicNames(windows="w", dlq="d")
    assert s.metrics_port == 9200 and s.batch_timeout_s == 1.0


@pytest.mark.parametrize("raw", ["007", "yes", "off", "null", "1e3", "12"])
def test_env_strings_are_taken_literally(raw: str) -> None:
    """Regression: env values were YAML-parsed even for string settings (``007`` -> ``7``,
    ``yes`` -> a bool error)."""
    s = load_settings(
        environ={"ECGWATCH_KAFKA__GROUP_ID": raw, "ECGWATCH_KAFKA__TOPICS__ALERTS": raw}
    )
    assert s.group_id == raw and s.topics.alerts == raw


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"ECGWATCH_WORKER__BATCH_SIZE": "abc"}, ["worker.batch_size", "'abc'", "int"]),
        ({"ECGWATCH_WORKER__BATCH_SIZE": "0"}, ["worker.batch_size", "0", ">= 1"]),
        ({"ECGWATCH_WORKER__DEVICE": "tpu"}, ["worker.device", "'tpu'", "auto, cpu or gpu"]),
        ({"ECGWATCH_WORKER__BATCH_SIZE": "true"}, ["worker.batch_size", "True", "bool"]),
        ({"ECGWATCH_WORKER__NOPE": "1"}, ["worker.nope", "unknown key", "batch_size"]),
        ({"ECGWATCH_NOPE__X": "1"}, ["nope", "unknown section", "kafka"]),
        ({"ECGWATCH_KAFKA__TOPICS__BOGUS": "x"}, ["kafka.topics.bogus", "unknown topic"]),
        ({"ECGWATCH_ALERTS__CRITICAL_RATIO": "0.5"}, ["alerts.critical_ratio", "0.5"]),
    ],
)
def test_errors_name_key_value_and_what_is_allowed(env: dict[str, str], names: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(environ=env)
    for part in names:
        assert part in str(exc.value)


def test_override_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"worker\.metrics_port: 70000"):
        load_settings(overrides={"worker": {"metrics_port": 70000}}, environ={})


@pytest.mark.parametrize("key", ["sasl_password", "api_token", "client_secret"])
def test_secrets_are_refused_in_the_file(tmp_path: Path, key: str) -> None:
    cfg = _yaml(tmp_path, f"kafka:\n  {key}: hunter2\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    msg = str(exc.value)
    assert f"kafka.{key}" in msg and f"ECGWATCH_KAFKA__{key.upper()}" in msg
    assert "hunter2" not in msg  # never echo a secret


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("worker: [1, 2]\n", "worker: expected a mapping"),
        ("- a\n- b\n", "expected a mapping of sections"),
        ("worker: {batch_size: 1\n", "not valid YAML"),
        ("kafka:\n  topics: ecg\n", "kafka.topics: expected a mapping"),
        ("kafka:\n  topics:\n    windows: ''\n", "non-empty topic name"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(_yaml(tmp_path, text), environ={})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_settings(_yaml(tmp_path, ""), environ={}) == WorkerSettings()


def test_kafka_security_from_file_and_password_from_environment(tmp_path: Path) -> None:
    cfg = _yaml(
        tmp_path,
        "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: SCRAM-SHA-512\n"
        "  sasl_username: ecg\n",
    )
    s = load_settings(cfg, environ={"ECGWATCH_KAFKA__SASL_PASSWORD": "hunter2"})
    sec = s.security
    assert (sec.protocol, sec.sasl_mechanism, sec.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "ecg",
    )
    assert sec.sasl_password == "hunter2"
    assert "hunter2" not in repr(s)  # settings are logged; the password never is
    kwargs = sec.client_kwargs()
    assert kwargs["sasl_plain_password"] == "hunter2" and kwargs["ssl_context"] is not None


def test_sasl_without_a_password_names_the_environment_variable(tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, "kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_username: ecg\n")
    with pytest.raises(ConfigError, match="ECGWATCH_KAFKA__SASL_PASSWORD"):
        load_settings(cfg, environ={})


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"ECGWATCH_KAFKA__SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol: 'TLS'"),
        (
            {
                "ECGWATCH_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "ECGWATCH_KAFKA__SASL_MECHANISM": "GSSAPI",
                "ECGWATCH_KAFKA__SASL_USERNAME": "u",
                "ECGWATCH_KAFKA__SASL_PASSWORD": "p",
            },
            "kafka.sasl_mechanism: 'GSSAPI'",
        ),
        (
            {"ECGWATCH_KAFKA__SECURITY_PROTOCOL": "SSL", "ECGWATCH_KAFKA__SSL_CERTFILE": "c.pem"},
            "give both",
        ),
    ],
)
def test_invalid_kafka_security_names_the_key(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(environ=env)


def test_plaintext_is_the_default_and_passes_nothing_but_the_protocol() -> None:
    assert load_settings(environ={}).security.client_kwargs() == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    ("source", "names"),
    [
        # a wrong type in a nested section (WorkerSettings.security, built by dacite)
        ({"overrides": {"kafka": {"sasl_username": [1]}}}, ["kafka.sasl_username", "[1]", "str"]),
        # environment text where an int is expected: YAML-parsed, still not a number
        ({"environ": {"ECGWATCH_WORKER__MAX_MESSAGE_BYTES": "lots"}}, ["'lots'", "expected int"]),
        ({"environ": {"ECGWATCH_KAFKA__SESSION_TIMEOUT_S": "no"}}, ["False is a bool", "float"]),
        ({"overrides": {"worker": {"batch_size": 1.5}}}, ["worker.batch_size: 1.5", "int"]),
        ({"overrides": {"kafka": {"topics": {"dlq": None}}}}, ["kafka.topics.dlq: None", "str"]),
    ],
)
def test_type_errors_name_the_file_key(source: dict[str, Any], names: list[str]) -> None:
    kwargs = {"environ": {}, **source}
    with pytest.raises(ConfigError) as exc:
        load_settings(**kwargs)
    for part in names:
        assert part in str(exc.value)


def test_a_float_setting_takes_an_int_and_an_int_stays_an_int(tmp_path: Path) -> None:
    cfg = _yaml(tmp_path, "worker:\n  commit_interval_s: 2\nkafka:\n  session_timeout_s: 30\n")
    s = load_settings(cfg, environ={"ECGWATCH_ALERTS__COOLDOWN_S": "5"})
    assert (s.commit_interval_s, s.session_timeout_s, s.cooldown_s) == (2.0, 30.0, 5.0)
    assert all(type(v) is float for v in (s.commit_interval_s, s.session_timeout_s, s.cooldown_s))
    assert type(load_settings(environ={"ECGWATCH_WORKER__BATCH_SIZE": "7"}).batch_size) is int


def test_topics_given_as_environment_text_say_str() -> None:
    """The message names the value's type as the user wrote it, not an internal marker."""
    with pytest.raises(ConfigError, match=r"kafka\.topics: expected a mapping .*, got str$"):
        load_settings(environ={"ECGWATCH_KAFKA__TOPICS": "ecg"})


def test_a_topic_name_follows_the_rule_of_every_text_setting(tmp_path: Path) -> None:
    """A number where text is expected is taken as its text, for topics as for ``group_id``
    (one rule for every ``str`` field instead of a second, stricter one for topics)."""
    s = load_settings(
        _yaml(tmp_path, "kafka:\n  group_id: 7\n  topics:\n    windows: 5\n"), environ={}
    )
    assert (s.group_id, s.topics.windows) == ("7", "5")


def test_a_section_that_is_not_a_mapping_is_refused_even_when_a_flag_sets_one_of_its_keys(
    tmp_path: Path,
) -> None:
    """``worker: 5`` must not be silently replaced by ``--registry``'s ``worker`` section."""
    cfg = _yaml(tmp_path, "worker: 5\n")
    for overrides in (None, {"worker": {"registry": "r"}}):
        with pytest.raises(ConfigError, match=r"worker: expected a mapping, got int"):
            load_settings(cfg, overrides, environ={})
    with pytest.raises(ConfigError, match=r"kafka: expected a mapping, got str"):
        load_settings(
            _yaml(tmp_path, "kafka: localhost\n"),
            environ={"ECGWATCH_KAFKA__BOOTSTRAP": "h:1"},
        )
