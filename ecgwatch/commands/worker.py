"""``ecgwatch worker``: run one stream worker (batch engine by default, or Faust)."""

from __future__ import annotations

import argparse

from ecgwatch.cli_common import add_kafka_args, overrides_from_args

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``worker`` subcommand."""
    p = sub.add_parser("worker", help="score windows from Kafka (stream worker)")
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
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        help="scoring processes in the consumer group (default 1); process i serves metrics on"
        " --metrics-port + i",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch worker``."""
    from ecgwatch.config import load_settings
    from pipeline.worker import needs_framework, run_worker

    settings = load_settings(args.config, overrides_from_args(args))
    if settings.processes > 1:
        import sys

        from pipeline.supervisor import run_processes

        # Each process gets the supervisor's settings through the environment
        # (pipeline.supervisor.child_environment); the file and the secrets come along.
        argv = [sys.executable, "-m", "ecgwatch", "worker"]
        if args.config:
            argv += ["--config", str(args.config)]
        return run_processes(argv, settings)
    if needs_framework(settings):
        # Only now, and with its start-up noise held back: a CPU worker on a dense model never
        # imports the framework (seconds and ~600 MiB saved; docs/performance.md).
        from ecgwatch.native_logs import import_tensorflow_quietly

        import_tensorflow_quietly()
    return run_worker(settings)
