"""``ecgwatch topics create``: the pipeline's Kafka topics, created idempotently."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``topics`` subcommand to ``sub`` (an argparse subparsers action)."""
    parser = sub.add_parser(
        "topics",
        help="create the pipeline's Kafka topics",
        description="Create ecg.windows, ecg.scores, ecg.alerts, ecg.windows.dlq and the beat-"
        "extraction stage's ecg.samples, ecg.samples.dlq and ecg.ingest.state if missing.",
    )
    parser.add_argument("action", choices=("create",))
    parser.add_argument(
        "--bootstrap",
        default=None,
        help="Kafka HOST:PORT (default: the config's kafka.bootstrap, else localhost:9092)",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="the worker's YAML config: its topic names and Kafka security settings are used",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=8,
        help="partitions of ecg.windows, ecg.scores and ecg.samples (default 8)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for Kafka (default 30)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Create the topics and print one line per topic."""
    from ecgwatch.cli_common import overrides_from_args, quiet_kafka_client_logs
    from ecgwatch.config import load_settings
    from pipeline.topics import create_topics, default_topics, ingest_topics

    quiet_kafka_client_logs(args)

    settings = load_settings(args.config, overrides_from_args(args))
    t = settings.topics
    specs = default_topics(
        args.partitions, windows=t.windows, scores=t.scores, alerts=t.alerts, dlq=t.dlq
    ) + ingest_topics(
        args.partitions,
        samples=t.samples,
        samples_dlq=t.samples_dlq,
        ingest_state=t.ingest_state,
    )
    results = create_topics(
        settings.bootstrap, specs, timeout_s=args.timeout, security=settings.security
    )
    for spec, res in zip(specs, results, strict=True):
        what = "created" if res.created else "exists"
        note = ""
        if res.partitions != spec.partitions:
            note = f" (wanted {spec.partitions}; existing topics are left unchanged)"
        unit = "partition" if res.partitions == 1 else "partitions"
        print(f"{res.name}: {what}, {res.partitions} {unit}{note}")
    return 0
