"""``ecgwatch alerts``: tail the alert topic."""

from __future__ import annotations

import argparse
import sys

from ecgwatch.cli_common import add_kafka_args, overrides_from_args

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``alerts`` subcommand."""
    p = sub.add_parser("alerts", help="print alerts from ecg.alerts as they arrive")
    add_kafka_args(p)
    p.add_argument("--json", action="store_true", help="JSON lines instead of readable lines")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    p.add_argument("--max", type=int, default=None, help="stop after this many alerts")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch alerts``."""
    import orjson

    from ecgwatch.config import load_settings
    from pipeline.tail import format_alert, read_records

    settings = load_settings(args.config, overrides_from_args(args))
    for alert in read_records(
        settings.bootstrap,
        settings.topics.alerts,
        from_beginning=args.from_beginning,
        timeout_s=args.timeout,
        max_records=args.max,
        security=settings.security,
    ):
        alert.pop("_partition", None)
        alert.pop("_offset", None)
        line = orjson.dumps(alert).decode() if args.json else format_alert(alert)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0
