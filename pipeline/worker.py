"""Start one worker process: verify the model, check topics, serve metrics, run the engine.

The engine is ``worker.engine``: ``batch`` (:mod:`pipeline.engine`, the default) or ``faust``
(:mod:`pipeline.app`).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from detector import ArtifactError, ModelRegistry, RegistryError
from detector.artifact import carries_numpy_pass
from detector.drift import INPUT_STATISTICS
from pipeline.codec import REJECT_REASONS, SCORING_REASONS
from pipeline.devices import device_view
from pipeline.errors import PipelineError
from pipeline.feeds import FeedWatch
from pipeline.lifecycle import freeze_heap
from pipeline.logs import apply_log_level, throttle_client_logs
from pipeline.metrics import PipelineMetrics, create_metrics
from pipeline.policy import KIND_PHYSIOLOGICAL, KIND_TECHNICAL, SEVERITIES
from pipeline.processor import WindowProcessor
from pipeline.server import HealthState, MetricsServer
from pipeline.settings import WorkerSettings

__all__ = ["load_model", "needs_framework", "run_worker"]

log = logging.getLogger(__name__)


#: Device nodes of the GPU drivers Keras's backends use (NVIDIA's and AMD's ROCm). Without
#: any, no backend can see a GPU, so ``device: auto`` needs no framework to know it.
GPU_DEVICE_NODES = ("/dev/nvidia0", "/dev/kfd")


def _gpu_possible(device: str) -> bool:
    """Whether Keras must be asked about GPUs: ``gpu`` was asked for, or the machine has a
    GPU driver (to use it, or for ``cpu`` to hide it before a Keras model is built)."""
    return device == "gpu" or any(os.path.exists(n) for n in GPU_DEVICE_NODES)


@functools.cache
def _select_device(device: str) -> bool:
    """Apply ``worker.device`` before Keras builds any model; returns whether a GPU is used.

    Imports Keras (seconds, hundreds of MiB): called only where a GPU may be seen
    (:func:`_gpu_possible`), so a CPU worker whose model carries its NumPy pass never does.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if device == "cpu" and gpus:
            tf.config.set_visible_devices([], "GPU")
    elif keras.backend.backend() == "torch":
        import torch

        gpus = [0] if torch.cuda.is_available() else []
    else:
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if device == "gpu" and not gpus:
        raise PipelineError(
            f"worker.device: 'gpu' requested but {keras.backend.backend()} sees no GPU; "
            "use 'auto' or 'cpu'"
        )
    return bool(gpus) and device != "cpu"


def _on_gpu(device: str) -> bool:
    """Whether Keras scores on a GPU (False without importing Keras where none can be)."""
    return _select_device(device) if _gpu_possible(device) else False


def needs_framework(settings: WorkerSettings) -> bool:
    """Whether starting this worker will import the deep-learning framework (Keras and its
    backend): a GPU may be used or must be hidden (:func:`_gpu_possible`), or the served or
    shadow model carries no NumPy pass. False for the usual CPU worker on a dense model, which
    then starts in about a second with a fraction of the memory. A version that cannot be
    resolved gives False: loading it reports the problem.
    """
    if _gpu_possible(settings.device):
        return True
    registry = ModelRegistry(settings.registry)
    for version in filter(None, (settings.model_version, settings.shadow_model)):
        try:
            path = registry.resolve(version)
        except RegistryError:
            continue
        if not carries_numpy_pass(path):
            return True
    return False


def load_model(settings: WorkerSettings) -> Any:
    """Load and verify the configured model version, or explain why the worker cannot start.

    On the CPU (``device: cpu``, or ``auto`` without a GPU) dense models score with a NumPy
    pass of the same weights (checked against Keras to 1e-5); on a GPU, Keras scores.
    """
    on_gpu = _on_gpu(settings.device)
    try:
        artifact = load_version(settings, settings.model_version, on_gpu)
    except (ArtifactError, RegistryError) as exc:
        raise PipelineError(f"refusing to start: {exc}") from exc
    if artifact.detector.backend == "numpy":
        # Matrices of (1000 x 140) @ (140 x 32) are too small for threads: OpenBLAS's
        # spinning helper threads cost far more than they bring, the more so on a busy
        # machine (measured: docs/performance.md, "Single-threaded BLAS"). Also leaves the
        # other cores to Kafka I/O.
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    log.info("scoring with %s (device %s)", artifact.detector.backend, settings.device)
    return artifact


def load_version(settings: WorkerSettings, version: str, on_gpu: bool) -> Any:
    """Verify and load one registry version with the backend the device calls for (at start,
    and for every roll-out: the same checks both times).

    Raises
    ------
    ArtifactError, RegistryError
        Naming the file and what is wrong with it.
    """
    artifact = ModelRegistry(settings.registry).load(version)
    artifact.detector.use_backend("keras" if on_gpu else "auto")
    return artifact


def _load_shadow(settings: WorkerSettings, metrics: PipelineMetrics) -> Any:
    """``worker.shadow_model``, verified like the served model; ``None`` when not set.

    Raises
    ------
    PipelineError
        When the version cannot be loaded: a shadow named in the configuration that does
        not verify is a configuration error, said at start rather than never.
    """
    if not settings.shadow_model:
        return None
    try:
        shadow = load_version(settings, settings.shadow_model, _on_gpu(settings.device))
    except (ArtifactError, RegistryError) as exc:
        raise PipelineError(f"refusing to start: worker.shadow_model: {exc}") from exc
    metrics.shadow_info.labels(shadow.version).set(1)
    for agreement in ("agree", "disagree", "failed"):
        metrics.shadow_windows.labels(agreement)
    print(f"[worker] shadow model {shadow.version} scores every batch too (no alerts)", flush=True)
    return shadow


def _start_rollout(
    settings: WorkerSettings, processor: WindowProcessor, metrics: PipelineMetrics
) -> Any:
    """Follow ``latest`` while running (``pipeline.rollout``), unless a version is pinned or
    ``worker.model_poll_s`` is 0. Returns the poller (or ``None``)."""
    from detector.registry import LATEST
    from pipeline.rollout import ModelRollout

    if settings.model_version != LATEST or not settings.model_poll_s:
        return None
    on_gpu = _on_gpu(settings.device)  # cached: what the start chose
    registry = ModelRegistry(settings.registry)
    return ModelRollout(
        processor,
        metrics,
        registry.current,
        lambda version: load_version(settings, version, on_gpu),
        settings.model_poll_s,
    ).start()


def _zero_series(metrics: PipelineMetrics) -> None:
    # Pre-create every labelled series at 0 so rate() sees 0 rather than "no data".
    for outcome in ("scored", "rejected"):
        metrics.windows.labels(outcome)
    for reason in (*REJECT_REASONS, *SCORING_REASONS):
        metrics.rejected.labels(reason)
    for severity in SEVERITIES:
        metrics.alerts.labels(severity)
    for kind in (KIND_PHYSIOLOGICAL, KIND_TECHNICAL):
        metrics.episodes_open.labels(kind)
    for statistic in INPUT_STATISTICS:
        metrics.input_drift.labels(statistic)


def run_worker(settings: WorkerSettings) -> int:
    """Run a worker until SIGINT/SIGTERM; returns the exit code.

    Raises
    ------
    PipelineError
        When there is no usable model or the topics do not exist.
    """
    artifact = load_model(settings)
    parts = _check_topics(settings)
    metrics = _model_metrics(artifact)
    health = HealthState(model_loaded=True, delivery_stall_s=settings.delivery_stall_s)
    metrics.delivery_stalled.set_function(health.delivery_stalled_s)
    processor = WindowProcessor(
        artifact,
        metrics,
        settings.topics,
        settings.alert_policy(),
        settings.max_message_bytes,
        feeds=FeedWatch(settings.stale_after_s),
        drift_window=settings.drift_window,
        shadow=_load_shadow(settings, metrics),
    )
    server = None
    if settings.metrics_port:
        views = {"/devices": lambda: device_view(processor.feeds, processor.alert_state)}
        server = MetricsServer(
            metrics.registry, health, settings.metrics_host, settings.metrics_port, views
        ).start()
    rollout = _start_rollout(settings, processor, metrics)
    port = server.port if server else "-"
    # worker.log_level for every engine (Faust's worker also sets it for its own loggers).
    apply_log_level(settings.log_level)
    throttle_client_logs()  # a broker outage: one line per kind and minute, not ~65 a second
    freeze_heap()
    try:
        if settings.engine == "batch":
            return _run_batch(settings, processor, health, port)
        return _run_faust(settings, processor, health, parts[settings.topics.windows], port)
    finally:
        if rollout is not None:
            rollout.stop()
        if server is not None:
            server.stop()


def _check_topics(settings: WorkerSettings) -> dict[str, int]:
    """Partition counts of the four topics; explains an unreachable broker or a missing topic."""
    from pipeline.topics import require_topics

    t = settings.topics
    return require_topics(
        settings.bootstrap, [t.windows, t.scores, t.alerts, t.dlq], settings.security
    )


def _model_metrics(artifact: Any) -> PipelineMetrics:
    """The worker's metrics, every series pre-created, the loaded model's gauges set."""
    from prometheus_client import disable_created_metrics

    disable_created_metrics()  # *_created samples only double the series count for Prometheus
    metrics = create_metrics()
    _zero_series(metrics)
    metrics.model_info.labels(artifact.version, artifact.detector.kind).set(1)
    metrics.model_threshold.set(artifact.threshold.value)
    metrics.model_loaded.set(1)
    return metrics


def _run_batch(
    settings: WorkerSettings, processor: WindowProcessor, health: HealthState, port: int | str
) -> int:
    """Announce the worker, then run the batch engine (:mod:`pipeline.engine`)."""
    from pipeline.engine import run_batch_engine

    artifact = processor.artifact
    backend = getattr(getattr(artifact, "detector", None), "backend", "?")
    print(
        f"[worker] model {artifact.version} ({backend}) threshold "
        f"{artifact.threshold.value:.6f}; batch engine consuming {settings.topics.windows} from "
        f"{settings.bootstrap}; metrics on :{port}",
        flush=True,
    )
    return run_batch_engine(settings, processor, health)


def _faust_worker_class() -> type:
    import faust

    from pipeline.lifecycle import arm_shutdown_watchdog

    # Named like Faust's own class: its log lines are labelled with the class name
    # ("[^Worker]: Ready"), which operators and tests look for.
    class Worker(faust.Worker):  # type: ignore[misc]
        """Faust's worker, with a bound on shutdown: after SIGTERM with the broker gone,
        Faust's own shutdown waits for it for minutes."""

        def _schedule_shutdown(self, signal: Any) -> None:
            arm_shutdown_watchdog()
            super()._schedule_shutdown(signal)

    return Worker


def _run_faust(
    settings: WorkerSettings,
    processor: WindowProcessor,
    health: HealthState,
    partitions: int,
    port: int | str,
) -> int:
    """Announce the worker, then run the Faust engine (:mod:`pipeline.app`)."""

    from pipeline.app import create_app

    app = create_app(settings, processor, health, partitions=partitions)
    artifact = processor.artifact
    log.info(
        "worker: model %s (threshold %.6f), metrics on :%s",
        artifact.version,
        artifact.threshold.value,
        port,
    )
    print(
        f"[worker] model {artifact.version} threshold {artifact.threshold.value:.6f}; "
        f"consuming {settings.topics.windows} from {settings.bootstrap}; metrics on "
        f"http://localhost:{port}/metrics",
        flush=True,
    )
    worker = _faust_worker_class()(
        app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
