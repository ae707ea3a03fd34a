"""``ecgwatch promote VERSION``: point the registry's ``latest`` at a verified version.

Workers serving ``latest`` switch to it while running, within ``worker.model_poll_s`` plus the
load time (``pipeline.rollout``; docs/operations.md, "Rolling out a new model version").
"""

from __future__ import annotations

import argparse

__all__ = ["add_registry_argument", "register", "run"]


def add_registry_argument(p: argparse.ArgumentParser) -> None:
    """``--registry DIR`` as every registry command takes it."""
    p.add_argument("--registry", default="models", help="model registry folder (default: models)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``promote`` subcommand."""
    p = sub.add_parser(
        "promote", help="verify a registry version and point 'latest' at it (hot roll-out)"
    )
    p.add_argument("version", help="a version folder name in the registry")
    add_registry_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch promote``: verify, then move ``latest`` atomically."""
    from detector import ModelRegistry

    registry = ModelRegistry(args.registry)
    before = registry.current()
    registry.promote(args.version)
    print(f"[promote] {args.registry}: latest {before or '(none)'} -> {args.version}")
    return 0
