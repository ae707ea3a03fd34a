"""``ecgwatch broker fetch|start|stop|status``: the local Apache Kafka broker (KRaft)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``broker`` subcommand to ``sub`` (an argparse subparsers action)."""
    parser = sub.add_parser(
        "broker",
        help="fetch, start, stop or inspect the local Kafka broker",
        description="A local Apache Kafka 4.x broker (single KRaft node on localhost); jars "
        "resolved from Maven Central into deploy/kafka/lib in a checkout, else "
        "~/.cache/ecgwatch/kafka (ECGWATCH_KAFKA_DIR overrides it).",
    )
    parser.add_argument("action", choices=("fetch", "start", "stop", "status"))
    parser.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    parser.add_argument(
        "--controller-port", type=int, default=None, help="KRaft controller port (default PORT+1)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="broker state dir (default .ecgwatch/kafka in a checkout, else "
        "~/.local/share/ecgwatch/kafka; ECGWATCH_BROKER_DATA_DIR overrides it)",
    )
    parser.add_argument("--heap", default="512m", help="JVM -Xmx (default 512m)")
    parser.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for start-up (default 90)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out one broker action; returns the exit code (status: 0 running, 1 not)."""
    from ecgwatch import broker
    from ecgwatch.cli_common import quiet_kafka_client_logs

    quiet_kafka_client_logs(args)

    if args.action == "fetch":
        print(f"Kafka jars in {broker.fetch()}")
        return 0
    if args.action == "start":
        st = broker.start(
            args.port,
            args.data_dir,
            args.controller_port,
            heap=args.heap,
            timeout_s=args.timeout,
        )
        print(f"broker {st.describe()}")
        return 0
    if args.action == "stop":
        stopped = broker.stop(args.data_dir)
        print("broker stopped" if stopped else "broker was not running")
        return 0
    st = broker.status(args.data_dir)
    print(f"broker {st.describe()}")
    return 0 if st.running else 1
