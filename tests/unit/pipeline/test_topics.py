"""create_topics against a fake admin client: idempotence and refusals (no broker)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pipeline import topics
from pipeline.errors import PipelineError
from pipeline.security import KafkaSecurity
from pipeline.topics import TopicResult, TopicSpec, create_topics


class _FakeAdmin:
    def __init__(self, existing: dict[str, int], refuse: str | None = None) -> None:
        self.existing = dict(existing)
        self.refuse = refuse
        self.closed = False

    def create_topics(self, request: dict[str, Any], **_: Any) -> dict[str, Any]:
        out = []
        for name, spec in request.items():
            if name == self.refuse:
                out.append({"name": name, "error_code": 37, "error_message": "bad partitions"})
            elif name in self.existing:
                out.append({"name": name, "error_code": 36})
            else:
                self.existing[name] = spec["num_partitions"]
                out.append({"name": name, "error_code": 0})
        return {"topics": out}

    def wait_for_topics(self, names: list[str], **_: Any) -> None:
        pass

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [
            {"name": n, "error_code": 0, "partitions": list(range(self.existing[n]))}
            for n in names
            if n in self.existing
        ]

    def close(self) -> None:
        self.closed = True


def _use(monkeypatch: pytest.MonkeyPatch, admin: _FakeAdmin) -> None:
    monkeypatch.setattr(topics, "_admin", lambda *a, **k: admin)


def test_existing_topics_are_reported_and_left_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = _FakeAdmin({"a": 3})
    _use(monkeypatch, admin)
    got = create_topics("h:1", [TopicSpec("a", 8), TopicSpec("b", 2)])
    assert got == [TopicResult("a", False, 3), TopicResult("b", True, 2)]
    assert admin.closed


def test_a_refused_topic_raises_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _FakeAdmin({}, refuse="b")
    _use(monkeypatch, admin)
    with pytest.raises(PipelineError, match=r"refused to create topic 'b'.*bad partitions"):
        create_topics("h:1", [TopicSpec("a", 1), TopicSpec("b", 1)])
    assert admin.closed


def _failing_admin(log_line: str | None) -> type:
    """A KafkaAdminClient stand-in that logs as kafka-python does and fails its bootstrap."""

    class _Admin:
        def __init__(self, **_: Any) -> None:
            from kafka.errors import KafkaTimeoutError

            if log_line:
                logging.getLogger("kafka.net.manager").error(log_line)
            raise KafkaTimeoutError("Unable to bootstrap from localhost:1")

    return _Admin


def test_a_rejected_password_is_named_as_an_authentication_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kafka

    line = (
        "Connection failed: [Error 58] SaslAuthenticationFailedError: Authentication failed: "
        "Invalid username or password"
    )
    monkeypatch.setattr(kafka, "KafkaAdminClient", _failing_admin(line))
    security = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "ecg", "secret")
    with pytest.raises(PipelineError) as err:
        topics.topic_partitions("localhost:1", ["t"], timeout_s=1, security=security)
    msg = str(err.value)
    assert msg.startswith("Kafka at localhost:1 rejected the credentials: authentication failed")
    assert "kafka.sasl_username='ecg'" in msg and "Invalid username or password" in msg
    assert "ECGWATCH_KAFKA__SASL_PASSWORD" in msg and "secret" not in msg


def test_a_silent_sasl_listener_still_points_at_the_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kafka

    monkeypatch.setattr(kafka, "KafkaAdminClient", _failing_admin(None))
    security = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "ecg", "secret")
    with pytest.raises(PipelineError) as err:
        topics.topic_partitions("localhost:1", ["t"], timeout_s=1, security=security)
    msg = str(err.value)
    assert msg.startswith("cannot reach Kafka at localhost:1 (KafkaTimeoutError)")
    assert "security_protocol is SASL_PLAINTEXT" in msg
    assert "kafka.sasl_username='ecg'" in msg and "ECGWATCH_KAFKA__SASL_PASSWORD" in msg
    assert "secret" not in msg


def test_plaintext_bootstrap_failure_has_no_security_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka

    monkeypatch.setattr(kafka, "KafkaAdminClient", _failing_admin(None))
    with pytest.raises(PipelineError) as err:
        topics.topic_partitions("localhost:1", ["t"], timeout_s=1)
    assert "security_protocol" not in str(err.value)
