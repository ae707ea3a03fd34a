"""``ecgwatch ingest``: the beat-extraction stage (``ecg.samples`` in, ``ecg.windows`` out)."""

from __future__ import annotations

import argparse
from typing import Any

from ecgwatch.cli_common import add_kafka_args, overrides_from_args

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``ingest`` subcommand."""
    p = sub.add_parser(
        "ingest",
        help="cut continuous ECG samples into beat windows (ecg.samples -> ecg.windows)",
        description="Consume device sample chunks from ecg.samples, detect R peaks, cut and "
        "resample each beat as the served model's beat recipe says, and produce one window "
        "per beat to ecg.windows. Stages sharing --group-id split the devices.",
    )
    add_kafka_args(p)
    p.add_argument("--registry", default=None, help="model registry folder (default: models)")
    p.add_argument(
        "--model-version",
        default=None,
        help="version whose beat recipe is used (default: latest)",
    )
    p.add_argument(
        "--metrics-port",
        dest="ingest_metrics_port",
        type=int,
        default=None,
        help="port of the stage's /metrics, /healthz, /readyz (default 9103; 0 disables)",
    )
    p.add_argument(
        "--group-id",
        dest="ingest_group_id",
        default=None,
        help="consumer group of ecg.samples (default ecgwatch-ingest)",
    )
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out = overrides_from_args(args)
    for key in ("metrics_port", "group_id"):
        value = getattr(args, f"ingest_{key}", None)
        if value is not None:
            out.setdefault("ingest", {})[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch ingest``."""
    import logging

    from detector import Artifact, ArtifactError, ModelRegistry, RegistryError
    from detector.beats import BeatRecipe
    from ecgwatch.config import load_settings
    from pipeline.errors import PipelineError
    from pipeline.ingest import run_ingest
    from pipeline.ingest_state import IngestProcessor
    from pipeline.topics import require_topics

    settings = load_settings(args.config, _overrides(args))
    try:
        path = ModelRegistry(settings.registry).resolve(settings.model_version)
        recipe = BeatRecipe.of_model(Artifact.verify(path))
    except (ArtifactError, RegistryError) as exc:
        raise PipelineError(f"refusing to start: {exc}") from exc
    t = settings.topics
    require_topics(
        settings.bootstrap,
        [t.samples, t.samples_dlq, t.ingest_state, t.windows],
        settings.security,
    )
    logging.getLogger().setLevel(settings.log_level.upper())
    print(
        f"[ingest] beat recipe of {path.name}: {recipe.detector} detector, window "
        f"{recipe.window}, pre_fraction {recipe.pre_fraction:g}",
        flush=True,
    )
    processor = IngestProcessor(recipe, t, settings.ingest.max_chunk_bytes, settings.ingest.idle_s)
    return run_ingest(settings, processor)
