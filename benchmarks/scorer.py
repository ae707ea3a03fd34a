"""Scorer alone: the detector's ``score`` at several batch sizes next to a bare NumPy pass."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["BATCH_SIZES", "bench_scorer", "rate"]

BATCH_SIZES = (1, 32, 256, 4096)


def rate(fn: Any, x: np.ndarray, min_s: float) -> float:
    """Windows/s of ``fn(x)`` over at least ``min_s`` seconds, after one warm-up call."""
    fn(x)  # warm-up (tf.function tracing, caches)
    n, t0 = 0, time.perf_counter()
    while True:
        fn(x)
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return n * len(x) / dt


def bare_numpy(model: Any, lo: float, hi: float) -> Any:
    """The arithmetic limit: Dense layers as float32 matmuls + MAE, no validation or copies."""
    weights = [lay.get_weights() for lay in model.layers if lay.get_weights()]
    acts = [lay.activation.__name__ for lay in model.layers if lay.get_weights()]
    ws = [(np.asarray(k, np.float32), np.asarray(b, np.float32)) for k, b in weights]
    scale = np.float32(1.0 / (hi - lo))

    def score(x: np.ndarray) -> np.ndarray:
        z = (x - np.float32(lo)) * scale
        h = z
        for (k, b), a in zip(ws, acts, strict=True):
            h = h @ k + b
            h = np.maximum(h, 0, out=h) if a == "relu" else 1 / (1 + np.exp(-h))
        return np.mean(np.abs(h - z), axis=1)

    return score


def bench_scorer(artifact: Any, windows: np.ndarray, min_s: float = 1.0) -> dict[str, Any]:
    """Windows/s per batch size for the detector (Keras and NumPy backends) and bare NumPy."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # as in the worker (pipeline/worker.py)
    det = artifact.detector
    lo, hi = det.normaliser.min_value, det.normaliser.max_value
    reps = -(-max(BATCH_SIZES) // len(windows))
    pool = np.tile(windows, (reps, 1)).astype(np.float32)
    out: dict[str, Any] = {"keras": {}, "detector": {}, "numpy": {}}
    bare = bare_numpy(det.model, lo, hi)
    det.use_backend("keras")
    for b in BATCH_SIZES:
        out["keras"][str(b)] = rate(det.score, pool[:b], min_s)
    out["backend"] = det.use_backend("auto")
    for b in BATCH_SIZES:
        out["detector"][str(b)] = rate(det.score, pool[:b], min_s)
        out["numpy"][str(b)] = rate(bare, pool[:b], min_s)
    ref = bare(pool[:256])
    out["max_abs_diff_vs_numpy"] = float(np.abs(det.score(pool[:256]) - ref).max())
    return out
