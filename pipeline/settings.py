"""Worker settings (validated by ``ecgwatch.config`` from YAML and environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import PipelineConfigError
from pipeline.feeds import check_stale_after
from pipeline.policy import AlertPolicy
from pipeline.samples import DEFAULT_MAX_CHUNK_BYTES
from pipeline.security import KafkaSecurity

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_TOPICS",
    "HEARTBEAT_INTERVAL_S",
    "LOG_LEVELS",
    "IngestSettings",
    "TopicNames",
    "WorkerSettings",
]

#: Where the clients look for Kafka unless told otherwise (the local broker's default port).
DEFAULT_BOOTSTRAP = "localhost:9092"

#: Consumer heartbeat interval, seconds. A group member learns that the group is rebalancing
#: only from a heartbeat's answer, so this bounds how long a joining worker (a restart, a
#: second process) waits for the others to let go of partitions: docs/performance.md, "Two
#: processes". Heartbeats are tiny requests; two a second cost nothing measurable.
HEARTBEAT_INTERVAL_S = 0.5

#: ``worker.log_level`` values (Python logging levels, lower case, as Faust takes them).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class TopicNames:
    """Names of the topics (formats: docs/messages.md; flow: docs/architecture.md).

    The first four are the worker's; ``samples``, ``samples_dlq`` and ``ingest_state`` are the
    beat-extraction stage's (``ecgwatch ingest``: continuous signal in, windows out to
    ``windows``; each device's beat counter kept in ``ingest_state``).
    """

    windows: str = "ecg.windows"
    scores: str = "ecg.scores"
    alerts: str = "ecg.alerts"
    dlq: str = "ecg.windows.dlq"
    samples: str = "ecg.samples"
    samples_dlq: str = "ecg.samples.dlq"
    ingest_state: str = "ecg.ingest.state"


#: The topic names every tool uses unless configured otherwise (the one place they are
#: spelled out; ``pipeline.topics``, ``pipeline.replay`` and the demo take them from here).
DEFAULT_TOPICS = TopicNames()


def _require(checks: list[tuple[bool, str, object, str]]) -> None:
    """Raise for the first failed ``(ok, key, value, allowed)`` check, naming key and range."""
    for ok, key, value, allowed in checks:
        if not ok:
            raise PipelineConfigError(f"{key}: {value!r} is not allowed; must be {allowed}")


@dataclass(frozen=True)
class IngestSettings:
    """The beat-extraction stage's own settings (``ingest.*``; ``ecgwatch ingest``).

    Parameters
    ----------
    group_id : str
        Consumer group of ``ecg.samples``; stages sharing it split the partitions (and with
        them the devices: a device's chunks are keyed by its id, so one stage owns it).
    metrics_port : int
        Port of the stage's ``/metrics``, ``/healthz``, ``/readyz`` (0 = disabled).
    max_chunk_bytes : int
        Larger ``ecg.samples`` values are dead-lettered as ``too_large``.
    idle_s : float
        A device silent this long has its buffered signal dropped (it would otherwise hold
        back its partition's commits); its beat counter is kept.
    batch_size : int
        Most chunks consumed in one ``getmany``.
    batch_timeout_s : float
        Longest wait to fill a batch.
    """

    group_id: str = "ecgwatch-ingest"
    metrics_port: int = 9103
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES
    idle_s: float = 60.0
    batch_size: int = 500
    batch_timeout_s: float = 0.02

    def __post_init__(self) -> None:
        checks = [
            (bool(self.group_id.strip()), "ingest.group_id", self.group_id, "a non-empty name"),
            (0 <= self.metrics_port <= 65535, "ingest.metrics_port", self.metrics_port, "0-65535"),
            (
                1024 <= self.max_chunk_bytes <= 64 * 1024 * 1024,
                "ingest.max_chunk_bytes",
                self.max_chunk_bytes,
                "1024-67108864",
            ),
            (1 <= self.idle_s <= 86400, "ingest.idle_s", self.idle_s, "1-86400 seconds"),
            (1 <= self.batch_size <= 100_000, "ingest.batch_size", self.batch_size, "1-100000"),
            (
                0 < self.batch_timeout_s <= 10,
                "ingest.batch_timeout_s",
                self.batch_timeout_s,
                "> 0 and <= 10 seconds",
            ),
        ]
        _require(checks)


@dataclass(frozen=True)
class WorkerSettings:
    """Everything one worker process needs.

    Parameters
    ----------
    bootstrap : str
        Kafka bootstrap servers, ``HOST:PORT[,HOST:PORT]``.
    security : KafkaSecurity
        TLS / SASL settings of every Kafka client (default: plaintext, no authentication).
    registry : str
        Model registry folder; the worker loads ``model_version`` from it.
    model_version : str
        A version name, or ``latest``.
    group_id : str
        Kafka consumer group (also the Faust app id); workers sharing it split the
        partitions.
    batch_size : int
        Most windows scored in one call (``stream.take`` max).
    batch_timeout_s : float
        Longest wait to fill a batch (``stream.take`` within): bounds added latency.
    max_message_bytes : int
        Larger messages are dead-lettered as ``too_large``.
    metrics_port : int
        Port of ``/metrics``, ``/healthz`` and ``/readyz`` (0 = disabled).
    cooldown_s, critical_ratio : float
        Alert policy (see ``pipeline.policy.AlertPolicy``).
    alert_mode : str
        ``alerts.mode``: ``episodes`` (default) or ``per_window``.
    update_interval_s, end_after_normal, end_after_s
        ``alerts.*`` of the episodes (see ``pipeline.policy.AlertPolicy``; checked there).
    stale_after_s : float
        ``alerts.stale_after_s``: a device silent this long (wall time) gets a ``feed_stale``
        technical alert (``pipeline.feeds``); 0 turns them off.
    device : str
        ``auto`` | ``cpu`` | ``gpu``: where scoring runs. ``cpu`` (and ``auto`` when no GPU is
        visible) scores dense models with a NumPy pass of the same weights; ``gpu`` uses Keras.
    started_file : str
        When not empty, the worker writes the epoch time of its first consumed batch to this
        file (``pipeline.lifecycle.announce_first_batch``); ``ecgwatch bench`` times from it.
    engine : str
        ``batch`` (default: aiokafka ``getmany`` micro-batches, commits only after the
        outputs are acknowledged; several times faster; alert de-dup state in memory) or
        ``faust`` (a Faust agent on ``stream.take_events`` with a table for alert state). See
        ``docs/configuration.md``.
    model_poll_s : float
        ``worker.model_poll_s``: with ``model_version: latest``, how often the running worker
        looks for a moved ``latest`` and switches to it (``pipeline.rollout``); 0: never.
    delivery_stall_s : float
        ``/readyz`` answers 503 once an output batch has awaited its acknowledgements this
        long (the worker keeps retrying; ``ecg_delivery_stalled_seconds`` shows the wait).
    """

    bootstrap: str = DEFAULT_BOOTSTRAP
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    registry: str = "models"
    model_version: str = "latest"
    group_id: str = "ecgwatch"
    topics: TopicNames = DEFAULT_TOPICS
    batch_size: int = 1000
    batch_timeout_s: float = 0.05
    max_message_bytes: int = 64 * 1024
    metrics_port: int = 9102
    metrics_host: str = "0.0.0.0"
    cooldown_s: float = 30.0
    critical_ratio: float = 2.0
    alert_mode: str = "episodes"
    update_interval_s: float = 30.0
    end_after_normal: int = 10
    end_after_s: float = 60.0
    stale_after_s: float = 10.0
    device: str = "auto"
    # `batch` by default: the Faust engine can skip windows when a worker restarts after a
    # kill -9 (docs/configuration.md, "Engines"); the batch engine's commits are our own.
    engine: str = "batch"
    data_dir: str = ".ecgwatch/worker"
    started_file: str = ""
    commit_interval_s: float = 1.0
    #: A crashed worker's partitions move to the others after this long (Faust's default is 60).
    session_timeout_s: float = 10.0
    log_level: str = "info"
    #: Scoring processes in the consumer group (``pipeline.supervisor``); 1 = this process.
    processes: int = 1
    delivery_stall_s: float = 30.0
    #: Seconds between looks at the registry's ``latest`` (``pipeline.rollout``); 0 = never.
    model_poll_s: float = 5.0
    #: Newest windows the drift gauges compare with the model's reference (``pipeline.drift``).
    drift_window: int = 1000
    #: A registry version scored beside the served model, for comparison only ("": none).
    shadow_model: str = ""
    #: The beat-extraction stage's settings (``ingest.*``).
    ingest: IngestSettings = field(default_factory=IngestSettings)

    @property
    def heartbeat_interval_s(self) -> float:
        """The consumer group heartbeat of every engine: :data:`HEARTBEAT_INTERVAL_S`, at
        most a third of ``kafka.session_timeout_s``."""
        return min(HEARTBEAT_INTERVAL_S, self.session_timeout_s / 3)

    def alert_policy(self) -> AlertPolicy:
        """The alert policy of the ``alerts.*`` settings.

        Raises
        ------
        PipelineConfigError
            Naming the setting and its allowed range (checked by :class:`AlertPolicy`).
        """
        return AlertPolicy(
            self.cooldown_s,
            self.critical_ratio,
            mode=self.alert_mode,
            update_interval_s=self.update_interval_s,
            end_after_normal=self.end_after_normal,
            end_after_s=self.end_after_s,
        )

    def __post_init__(self) -> None:
        checks = [
            (self.batch_size >= 1, "worker.batch_size", self.batch_size, ">= 1"),
            (self.batch_timeout_s > 0, "worker.batch_timeout_s", self.batch_timeout_s, "> 0"),
            (
                self.max_message_bytes >= 1024,
                "worker.max_message_bytes",
                self.max_message_bytes,
                ">= 1024",
            ),
            (0 <= self.metrics_port <= 65535, "worker.metrics_port", self.metrics_port, "0-65535"),
            (
                self.device in ("auto", "cpu", "gpu"),
                "worker.device",
                self.device,
                "auto, cpu or gpu",
            ),
            (
                self.engine in ("faust", "batch"),
                "worker.engine",
                self.engine,
                "faust or batch",
            ),
            (self.commit_interval_s > 0, "worker.commit_interval_s", self.commit_interval_s, "> 0"),
            (
                1 <= self.session_timeout_s <= 300,
                "kafka.session_timeout_s",
                self.session_timeout_s,
                "1-300",
            ),
            (bool(self.bootstrap.strip()), "kafka.bootstrap", self.bootstrap, "HOST:PORT"),
            (1 <= self.processes <= 64, "worker.processes", self.processes, "1-64"),
            (
                1 <= self.delivery_stall_s <= 3600,
                "worker.delivery_stall_s",
                self.delivery_stall_s,
                "1-3600",
            ),
            (
                self.model_poll_s == 0 or 0.5 <= self.model_poll_s <= 3600,
                "worker.model_poll_s",
                self.model_poll_s,
                "0 (never) or 0.5-3600",
            ),
            (
                100 <= self.drift_window <= 1_000_000,
                "worker.drift_window",
                self.drift_window,
                "100-1000000 windows",
            ),
            (
                self.log_level in LOG_LEVELS,
                "worker.log_level",
                self.log_level,
                " | ".join(LOG_LEVELS),
            ),
        ]
        _require(checks)
        self.alert_policy()  # the alerts.* checks are the policy's own
        check_stale_after(self.stale_after_s)
