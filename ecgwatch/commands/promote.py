"""``ecgwatch promote VERSION``: point the registry's ``latest`` at a verified version.

Workers serving ``latest`` switch to it while running, within ``worker.model_poll_s`` plus the
load time (``pipeline.rollout``; docs/operations.md, "Rolling out a new model version").
"""

from __future__ import annotations

import argparse

from ecgwatch.cli_common import add_registry_arg

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``promote`` subcommand."""
    p = sub.add_parser(
        "promote", help="verify a registry version and point 'latest' at it (hot roll-out)"
    )
    p.add_argument("version", help="a version folder name in the registry")
    add_registry_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch promote``: verify, then move ``latest`` atomically."""
    from detector import ModelRegistry

    registry = ModelRegistry(args.registry)
    before = registry.current()
    registry.promote(args.version)
    print(f"[promote] {args.registry}: latest {before or '(none)'} -> {args.version}")
    return 0
