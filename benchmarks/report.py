"""The benchmark report as a text table, with the issue's targets checked."""

from __future__ import annotations

from typing import Any

__all__ = ["TARGETS", "format_report", "targets"]

#: (name, description, check) of every target in issue 5.
TARGETS = (
    ("json_vs_raw", "ecgwatch_json >= 0.5 x raw", lambda r: r["ratio"]["json_vs_raw"] >= 0.5),
    ("binary_vs_raw", "ecgwatch_binary >= 0.7 x raw", lambda r: r["ratio"]["binary_vs_raw"] >= 0.7),
    (
        "binary_vs_naive",
        "ecgwatch_binary >= 100 x naive",
        lambda r: r["ratio"]["binary_vs_naive"] >= 100,
    ),
    ("p99", "p99 latency <= 50 ms at 2,000/s", lambda r: (r["latency_ms"]["p99"] or 1e9) <= 50),
    (
        "scorer_256",
        "scorer at batch 256 >= 0.5 x numpy",
        lambda r: r["scorer_windows_per_s"]["256"] >= 0.5 * r["numpy_windows_per_s"]["256"],
    ),
    ("rss", "worker peak RSS <= 1 GiB", lambda r: (r["worker_peak_rss_mb"] or 1e9) <= 1024),
)


def targets(report: dict[str, Any]) -> dict[str, bool]:
    """Whether each target is met."""
    return {name: bool(check(report)) for name, _, check in TARGETS}


#: (label, key in ``windows_per_s``) of each throughput row; absent keys are left out.
_THROUGHPUT_ROWS = (
    ("raw (aiokafka getmany, no work)", "raw"),
    ("naive (Faust + predict per msg)", "naive"),
    ("ecgwatch worker, JSON (batch)", "ecgwatch_json"),
    ("ecgwatch worker, binary (batch)", "ecgwatch_binary"),
    ("ecgwatch worker, JSON (faust)", "faust_json"),
)

_SCORER_BATCHES = ("1", "32", "256", "4096")


def _throughput_lines(r: dict[str, Any]) -> list[str]:
    w, ratio = r["windows_per_s"], r["ratio"]
    lines = [f"{'throughput':<34}{'windows/s':>14}{'x raw':>9}"]
    for label, key in _THROUGHPUT_ROWS:
        if key in w:
            lines.append(f"{label:<34}{w[key]:>14,.0f}{w[key] / w['raw']:>9.3f}")
    return [
        *lines,
        f"{'json / naive':<34}{ratio['json_vs_naive']:>14,.0f}x",
        f"{'binary / naive':<34}{ratio['binary_vs_naive']:>14,.0f}x",
    ]


def _latency_lines(r: dict[str, Any]) -> list[str]:
    lat, floor = r["latency_ms"], r.get("latency_floor_ms", {})
    percentiles = (
        f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms, "
        f"max {lat['max']:.1f} ms"
        if lat["n"]
        else "no scores seen"
    )
    return [
        f"latency at {lat['rate']:,.0f}/s for {lat['seconds']:.0f} s ({lat['n']} windows): "
        + percentiles,
        f"broker floor (produce -> consume, no worker): p50 {floor['p50']:.1f} "
        f"ms, p99 {floor['p99']:.1f} ms"
        if floor.get("n")
        else "broker floor: not measured",
    ]


def _scorer_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"{'scorer (windows/s)':<20}{'batch 1':>12}{'32':>12}{'256':>12}{'4096':>12}"]
    for label, key in (
        ("keras (tf.function)", "keras_windows_per_s"),
        (f"detector ({r['scorer_engine']})", "scorer_windows_per_s"),
        ("bare numpy", "numpy_windows_per_s"),
    ):
        v = r[key]
        lines.append(f"{label:<20}" + "".join(f"{v[b]:>12,.0f}" for b in _SCORER_BATCHES))
    return lines


def _target_lines(r: dict[str, Any]) -> list[str]:
    met = targets(r)
    return ["targets:", *(f"  [{'x' if met[name] else ' '}] {desc}" for name, desc, _ in TARGETS)]


def format_report(r: dict[str, Any]) -> str:
    """Human-readable table of one run.

    Parameters
    ----------
    r : dict
        A report from :func:`benchmarks.harness.run_bench`.

    Returns
    -------
    str
        Throughput, latency and scorer tables, peak RSS and which targets are met.
    """
    title = (
        f"ecgwatch bench: {r['windows']:,} windows, median of {r['repeats']} run(s), "
        f"{r['seconds']:.0f} s"
    )
    return "\n".join(
        [
            title,
            "",
            *_throughput_lines(r),
            "",
            *_latency_lines(r),
            "",
            *_scorer_lines(r),
            "",
            f"worker peak RSS: {r['worker_peak_rss_mb']:.0f} MiB",
            "",
            *_target_lines(r),
        ]
    )
