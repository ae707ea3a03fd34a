"""``ecgwatch alerts``: tail the alert topic."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ecgwatch.cli_common import add_kafka_args, overrides_from_args

__all__ = ["format_record", "register"]


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
    from pipeline.tail import read_records

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
        line = orjson.dumps(alert).decode() if args.json else format_record(alert)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


def format_record(a: dict[str, Any]) -> str:
    """One readable line per alert record: an episode's phase, or a per-window alert."""
    if "phase" not in a:  # alerts.mode: per_window
        from pipeline.tail import format_alert

        return format_alert(a)
    when = time.strftime("%H:%M:%S", time.localtime(float(a.get("ts", 0))))
    since = time.strftime("%H:%M:%S", time.localtime(float(a.get("first_ts", 0))))
    episode = str(a.get("episode_id", "?"))[:8]
    if a.get("kind") == "technical":
        return (
            f"{when} {str(a.get('phase', '?')).upper():6} {str(a.get('priority', '?')).upper():6} "
            f"device {a.get('device_id')} {a.get('condition', '?')} episode {episode}: silent "
            f"{float(a.get('silent_s') or 0):.1f} s after window seq {a.get('seq')} "
            f"(model {a.get('model_version')})"
        )
    return (
        f"{when} {str(a.get('phase', '?')).upper():6} {str(a.get('priority', '?')).upper():6} "
        f"device {a.get('device_id')} {a.get('condition', '?')} episode {episode} "
        f"since {since}: {a.get('anomalous_windows')}/{a.get('windows_seen')} windows "
        f"anomalous, peak {float(a.get('peak_score', 0)):.4f} (threshold "
        f"{float(a.get('threshold', 0)):.4f}, seq {a.get('seq')}, model {a.get('model_version')})"
    )
