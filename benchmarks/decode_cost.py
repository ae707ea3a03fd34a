"""Cost of decoding JSON windows: ``decode_batch`` precise path vs fast (simdjson) path.

Run with ``python -m benchmarks.decode_cost``. Windows are ECG5000 beats (the seed split's
test set, from ``--data``; random numbers when it cannot be loaded) encoded with
``pipeline.codec.encode_window_json``; both paths decode the same batches, interleaved, and
the median of ``--repeat`` repetitions is reported in µs per window, on one core.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.codec import decode_batch, encode_window_json


def _windows(data: str, n: int) -> tuple[np.ndarray, str]:
    try:
        from ecgwatch.cli_common import load_windows

        x, _ = load_windows(data, "test")
        source = f"ECG5000 beats ({data})"
    except Exception as exc:  # no data here: random windows of the same shape
        x = np.random.default_rng(0).normal(size=(n, 140))
        source = f"random windows ({type(exc).__name__} loading {data})"
    x = np.asarray(x, dtype=np.float64)
    return np.resize(x, (n, x.shape[1])), source


def _messages(x: np.ndarray) -> list[bytes | None]:
    return [
        encode_window_json(f"dev-{i % 100}", i, 1_700_000_000.0 + i / 100, row)
        for i, row in enumerate(x)
    ]


def _time(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / n * 1e6


def measure(
    values: Sequence[bytes | None], repeat: int = 7, loops: int = 5
) -> dict[str, list[float]]:
    """µs per window of each path, one figure per repetition (each: ``loops`` batches; the
    two paths interleaved)."""
    runs: dict[str, list[float]] = {"precise": [], "fast": []}
    n = len(values) * loops
    for _ in range(repeat):
        for name, precise in (("precise", True), ("fast", False)):

            def run(precise: bool = precise) -> None:
                for _ in range(loops):
                    decode_batch(values, precise=precise)

            runs[name].append(_time(run, n))
    return runs


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data", help="ECG5000 source (load_windows)")
    ap.add_argument("--batch", type=int, default=1000, help="windows per decode_batch call")
    ap.add_argument("--repeat", type=int, default=7, help="repetitions (the median is shown)")
    args = ap.parse_args(argv)
    x, source = _windows(args.data, args.batch)
    values = _messages(x)
    fast, precise = decode_batch(values), decode_batch(values, precise=True)
    assert np.array_equal(fast.windows, precise.windows) and fast.index == precise.index
    assert not fast.rejected, fast.rejected[:3]
    decode_batch(values)  # warm-up (the thread's parser, caches)
    runs = measure(values, args.repeat)
    med = {k: statistics.median(v) for k, v in runs.items()}
    best = {k: min(v) for k, v in runs.items()}
    size = sum(len(v or b"") for v in values) / len(values)
    print(f"{source}: batch {args.batch}, {size:.0f} bytes/window, {args.repeat} repetitions")
    print("  µs/window                                            median    best")
    for key, label in (
        ("precise", "precise path (orjson, per-field checks, np.array)"),
        ("fast", "fast path (simdjson, as_buffer)"),
    ):
        print(f"  {label:<50} {med[key]:7.2f} {best[key]:7.2f}")
    print(f"  speed-up (median): {med['precise'] / med['fast']:.1f}x")


if __name__ == "__main__":
    main()
