"""Entry point of the ``ecgwatch`` command.

Each subcommand lives in ``ecgwatch/commands/<name>.py`` and exposes
``register(subparsers) -> None``, which adds its parser and sets ``func`` (a callable taking
the parsed namespace and returning an exit code). Command modules import heavy libraries
(TensorFlow, Faust) inside ``func`` only, so ``ecgwatch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "TENSORFLOW_COMMANDS", "build_parser", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = (
    "train",
    "evaluate",
    "broker",
    "topics",
    "worker",
    "ingest",
    "promote",
    "rollback",
    "replay",
    "alerts",
    "devices",
    "demo",
    "bench",
    "compare",
    "stitch",
)

#: Commands that load Keras; TensorFlow is imported first with its start-up noise filtered
#: (see :mod:`ecgwatch.native_logs`). ``worker`` does the same only when its model or device
#: needs the framework (``pipeline.worker.needs_framework``).
TENSORFLOW_COMMANDS = frozenset({"train", "evaluate", "demo", "bench", "compare"})


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="ecgwatch", description="Streaming anomaly detection for ECG feeds."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"ecgwatch.commands.{name}").register(sub)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Error types that end a command with a one-line message instead of a traceback."""
    from detector.errors import DetectorError

    types: list[type[BaseException]] = [DetectorError, FileNotFoundError]
    for mod, name in (
        ("training.errors", "TrainingError"),
        ("pipeline.errors", "PipelineError"),
        ("ecgwatch.config", "ConfigError"),
        ("ecgwatch.errors", "EcgwatchError"),
    ):
        with contextlib.suppress(ImportError, AttributeError):
            types.append(getattr(importlib.import_module(mod), name))
    return tuple(types)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter out
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose > 1
        else logging.INFO
        if args.verbose
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in TENSORFLOW_COMMANDS:
        from ecgwatch.native_logs import import_tensorflow_quietly

        import_tensorflow_quietly()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ecgwatch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ecgwatch alerts ... | head`): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut off by a pipe
    except _expected_errors() as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"ecgwatch {args.command}: error: {msg}", file=sys.stderr)
        return 2
