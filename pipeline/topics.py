"""The pipeline's Kafka topics and their idempotent creation (kafka-python admin client).

Topics are created explicitly, never auto-created by the broker, so that a typo in a topic name
fails loudly and ``ecg.windows`` gets the partition count the workers are meant to scale to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError
from pipeline.security import KafkaSecurity
from pipeline.settings import DEFAULT_BOOTSTRAP, DEFAULT_TOPICS

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_PARTITIONS",
    "INGEST_STATE_CONFIGS",
    "TopicResult",
    "TopicSpec",
    "create_topics",
    "default_topics",
    "ingest_topics",
    "require_topics",
    "topic_partitions",
]

DEFAULT_PARTITIONS = 8

#: ``ecg.ingest.state`` is read whole on every assignment: compacted (one record per device
#: kept), with segments rolled and cleaned often so that little uncompacted history is left.
INGEST_STATE_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": "600000",
    "min.cleanable.dirty.ratio": "0.1",
}

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create.

    Attributes
    ----------
    name : str
        Topic name.
    partitions : int
        Number of partitions (>= 1).
    replication_factor : int
        Replicas per partition; 1 on the single-node local broker.
    configs : dict of str to str
        Topic settings (e.g. ``cleanup.policy``); empty: the broker's defaults.
    """

    name: str
    partitions: int
    replication_factor: int = 1
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicResult:
    """What :func:`create_topics` did for one topic.

    Attributes
    ----------
    name : str
        Topic name.
    created : bool
        True if this call created it, False if it already existed.
    partitions : int
        Partition count the topic has now (may differ from the spec if it already existed).
    """

    name: str
    created: bool
    partitions: int


def _check_partitions(partitions: int) -> None:
    if partitions < 1:
        raise PipelineError(
            f"partitions must be >= 1, got {partitions}: pass --partitions 1 or more"
        )


def default_topics(
    partitions: int = DEFAULT_PARTITIONS,
    *,
    windows: str = DEFAULT_TOPICS.windows,
    scores: str = DEFAULT_TOPICS.scores,
    alerts: str = DEFAULT_TOPICS.alerts,
    dlq: str = DEFAULT_TOPICS.dlq,
) -> list[TopicSpec]:
    """The four pipeline topics.

    ``ecg.windows`` and ``ecg.scores`` get ``partitions`` each (the input's partition count bounds
    how many workers share the load; scores follow the same keys). ``ecg.alerts`` and the DLQ are
    low-volume and get one partition, which keeps them in order for ``ecgwatch alerts`` and for
    people reading them.

    Parameters
    ----------
    partitions : int
        Partitions of the windows and scores topics.
    windows, scores, alerts, dlq : str
        Topic names (default :data:`pipeline.settings.DEFAULT_TOPICS`).

    Returns
    -------
    list of TopicSpec
    """
    _check_partitions(partitions)
    return [
        TopicSpec(windows, partitions),
        TopicSpec(scores, partitions),
        TopicSpec(alerts, 1),
        TopicSpec(dlq, 1),
    ]


def ingest_topics(
    partitions: int = DEFAULT_PARTITIONS,
    *,
    samples: str = DEFAULT_TOPICS.samples,
    samples_dlq: str = DEFAULT_TOPICS.samples_dlq,
    ingest_state: str = DEFAULT_TOPICS.ingest_state,
) -> list[TopicSpec]:
    """The beat-extraction stage's topics: ``ecg.samples`` (``partitions``, keyed by device
    like the windows), its dead-letter topic (one partition, as the worker's) and its state
    (``ecg.ingest.state``: each device's newest beat counter, compacted: one record per device
    is kept; see :data:`INGEST_STATE_CONFIGS`).

    Parameters
    ----------
    partitions : int
        Partitions of the samples topic.
    samples, samples_dlq, ingest_state : str
        Topic names (default :data:`pipeline.settings.DEFAULT_TOPICS`).

    Returns
    -------
    list of TopicSpec
    """
    _check_partitions(partitions)
    return [
        TopicSpec(samples, partitions),
        TopicSpec(samples_dlq, 1),
        TopicSpec(ingest_state, 1, configs=dict(INGEST_STATE_CONFIGS)),
    ]


class _AuthFailures(logging.Handler):
    """Remembers kafka-python's log lines about rejected credentials.

    kafka-python retries a bootstrap whose SASL handshake was rejected until its timeout and
    then reports only "Unable to bootstrap"; the reason is in its log.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "AuthenticationFailed" in msg or "Authentication failed" in msg:
            self.reasons.append(msg)


def _admin(bootstrap: str, timeout_s: float, security: KafkaSecurity | None = None) -> Any:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    security = security or KafkaSecurity()
    watch = _AuthFailures()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(watch)
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="ecgwatch-topics",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
            **security.client_kwargs(),
        )
    except KafkaError as exc:
        if watch.reasons:
            reason = watch.reasons[-1].rsplit("Authentication failed:", 1)[-1].strip(" )")
            raise PipelineError(
                f"Kafka at {bootstrap} rejected the credentials: authentication failed for "
                f"kafka.sasl_username={security.sasl_username!r} "
                f"(kafka.sasl_mechanism={security.sasl_mechanism}): {reason}; check the "
                "username and ECGWATCH_KAFKA__SASL_PASSWORD"
            ) from exc
        raise PipelineError(
            f"cannot reach Kafka at {bootstrap} ({type(exc).__name__}): start a broker "
            "(`ecgwatch broker start`) or pass the right --bootstrap HOST:PORT"
            + _security_hint(security)
        ) from exc
    finally:
        kafka_log.removeHandler(watch)


def _security_hint(security: KafkaSecurity) -> str:
    """What else to check when a secured listener never answered the handshake."""
    if security.protocol == "PLAINTEXT":
        return ""
    hint = f" (security_protocol is {security.protocol}: is that what the listener speaks?"
    if security.uses_sasl:
        # A listener may close the socket during the SASL exchange without an error response
        # (seen on a loaded machine with a wrong password), so the credentials stay suspect.
        hint += (
            f" A listener that closes the connection during the SASL handshake may also be "
            f"refusing kafka.sasl_username={security.sasl_username!r} "
            f"(kafka.sasl_mechanism={security.sasl_mechanism}): check the username and "
            "ECGWATCH_KAFKA__SASL_PASSWORD"
        )
    return hint + ")"


def topic_partitions(
    bootstrap: str,
    names: Iterable[str],
    *,
    timeout_s: float = 30.0,
    security: KafkaSecurity | None = None,
) -> dict[str, int]:
    """Partition count of each existing topic among ``names`` (missing topics are left out)."""
    admin = _admin(bootstrap, timeout_s, security)
    try:
        return _partitions(admin, list(names))
    finally:
        admin.close()


def require_topics(
    bootstrap: str, names: list[str], security: KafkaSecurity | None = None
) -> dict[str, int]:
    """Partition counts of ``names``; explains an unreachable broker or a missing topic.

    Raises
    ------
    PipelineError
        Naming the broker and the fix, or the missing topics and the command that creates them.
    """
    try:
        parts = topic_partitions(bootstrap, names, security=security)
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(
            f"cannot reach Kafka at {bootstrap}: {exc}; start a broker or pass --bootstrap"
        ) from exc
    missing = [n for n in names if n not in parts]
    if missing:
        raise PipelineError(
            f"topics {missing} do not exist on {bootstrap}; run `ecgwatch topics create` first"
        )
    return parts


def _partitions(admin: Any, names: list[str]) -> dict[str, int]:
    return {
        t["name"]: len(t["partitions"])
        for t in admin.describe_topics(names)
        if t.get("error_code", 0) == 0 and t.get("partitions")
    }


def create_topics(
    bootstrap: str = DEFAULT_BOOTSTRAP,
    specs: Sequence[TopicSpec] | None = None,
    *,
    timeout_s: float = 30.0,
    security: KafkaSecurity | None = None,
) -> list[TopicResult]:
    """Create ``specs`` (default :func:`default_topics`) if they do not exist yet; wait until
    every partition has a leader.

    Idempotent: an existing topic is reported with ``created=False`` and left as it is (its
    partition count is not changed, even if it differs from the spec).

    Parameters
    ----------
    bootstrap : str
        ``HOST:PORT`` of a broker.
    specs : sequence of TopicSpec, optional
        Topics to create.
    timeout_s : float
        Request timeout and the limit for the topics to become usable.
    security : KafkaSecurity, optional
        TLS / SASL settings (default: plaintext).

    Returns
    -------
    list of TopicResult
        One per spec, in order.

    Raises
    ------
    PipelineError
        If the broker cannot be reached or refuses a topic for another reason than that it exists.
    """
    from kafka.errors import KafkaError

    specs = list(default_topics() if specs is None else specs)
    admin = _admin(bootstrap, timeout_s, security)
    try:
        created = _create_missing(admin, specs, timeout_s, bootstrap)
        names = [s.name for s in specs]
        admin.wait_for_topics(names, timeout_ms=int(timeout_s * 1000))
        counts = _partitions(admin, names)
    except KafkaError as exc:
        raise PipelineError(
            f"creating topics on {bootstrap} failed ({type(exc).__name__}: {exc}): "
            "check that the broker is up (`ecgwatch broker status`)"
        ) from exc
    finally:
        admin.close()
    return [TopicResult(s.name, s.name in created, counts.get(s.name, 0)) for s in specs]


def _create_missing(
    admin: Any, specs: list[TopicSpec], timeout_s: float, bootstrap: str
) -> set[str]:
    """Ask for every topic of ``specs``; returns the names this call created.

    "Already exists" is the idempotent case; any other refusal raises.
    """
    from kafka.errors import for_code

    request = {
        s.name: {
            "num_partitions": s.partitions,
            "replication_factor": s.replication_factor,
            **({"configs": dict(s.configs)} if s.configs else {}),
        }
        for s in specs
    }
    response = admin.create_topics(request, timeout_ms=int(timeout_s * 1000), raise_errors=False)
    created: set[str] = set()
    for topic in response["topics"]:
        code = topic["error_code"]
        if code == 0:
            created.add(topic["name"])
        elif code != _TOPIC_ALREADY_EXISTS:
            raise PipelineError(
                f"Kafka at {bootstrap} refused to create topic {topic['name']!r}: "
                f"{for_code(code).__name__} ({topic.get('error_message')}); "
                "check the broker log and the topic settings"
            )
    return created
