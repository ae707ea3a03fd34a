"""``ecgwatch worker``: run one Faust stream worker."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_kafka_args", "register"]


def add_kafka_args(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that talks to Kafka."""
    p.add_argument(
        "--bootstrap",
        default=None,
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: config, else localhost:9092)",
    )
    p.add_argument("--config", default=None, help="YAML configuration file")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``worker`` subcommand."""
    p = sub.add_parser("worker", help="score windows from Kafka (Faust worker)")
    add_kafka_args(p)
    p.add_argument("--registry", default=None, help="model registry folder (default: models)")
    p.add_argument("--model-version", default=None, help="version to load (default: latest)")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="port of /metrics, /healthz, /readyz (default 9102; 0 disables)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="max windows per scoring call")
    p.add_argument(
        "--batch-timeout", type=float, default=None, help="max seconds to wait to fill a batch"
    )
    p.add_argument("--group-id", default=None, help="Kafka consumer group (default ecgwatch)")
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default=None)
    p.add_argument(
        "--engine",
        choices=["faust", "batch"],
        default=None,
        help="consumption engine (default batch: aiokafka getmany loop; faust: the Faust agent)",
    )
    p.add_argument("--data-dir", default=None, help="Faust state folder")
    p.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Command-line flags as config overrides (only those given)."""
    pairs = {
        ("kafka", "bootstrap"): getattr(args, "bootstrap", None),
        ("kafka", "group_id"): getattr(args, "group_id", None),
        ("worker", "registry"): getattr(args, "registry", None),
        ("worker", "model_version"): getattr(args, "model_version", None),
        ("worker", "metrics_port"): getattr(args, "metrics_port", None),
        ("worker", "batch_size"): getattr(args, "batch_size", None),
        ("worker", "batch_timeout_s"): getattr(args, "batch_timeout", None),
        ("worker", "device"): getattr(args, "device", None),
        ("worker", "engine"): getattr(args, "engine", None),
        ("worker", "data_dir"): getattr(args, "data_dir", None),
    }
    out: dict[str, dict[str, Any]] = {}
    for (section, key), value in pairs.items():
        if value is not None:
            out.setdefault(section, {})[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch worker``."""
    from ecgwatch.config import load_settings
    from pipeline.worker import run_worker

    settings = load_settings(args.config, overrides_from_args(args))
    return run_worker(settings)
