"""``ecgwatch rollback``: point the registry's ``latest`` back at its previous version."""

from __future__ import annotations

import argparse

from ecgwatch.cli_common import add_registry_arg

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``rollback`` subcommand."""
    p = sub.add_parser(
        "rollback",
        help="point 'latest' back at the version it pointed to before (verified first)",
    )
    add_registry_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch rollback``."""
    from detector import ModelRegistry

    registry = ModelRegistry(args.registry)
    before = registry.current()
    target = registry.rollback()
    print(f"[rollback] {args.registry}: latest {before} -> {target}")
    return 0
