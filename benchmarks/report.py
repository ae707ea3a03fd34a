"""The benchmark report as a text table, with the issue's targets checked."""

from __future__ import annotations

from typing import Any

__all__ = ["TARGETS", "format_report", "targets"]


def _ratio(key: str, at_least: float) -> Any:
    """A check that ``ratio[key] >= at_least``; None (not measured) when the ratio is absent."""
    return lambda r: None if key not in r["ratio"] else r["ratio"][key] >= at_least


#: (name, description, check) of every target: issue 13's, then issue 5's. A check returns
#: None when the report lacks what it needs (a contender that was skipped).
TARGETS = (
    ("json_vs_loop", "ecgwatch_json >= 1.5 x hand-written loop", _ratio("json_vs_loop", 1.5)),
    ("binary_vs_loop", "ecgwatch_binary >= 3 x hand-written loop", _ratio("binary_vs_loop", 3.0)),
    (
        "faust_json",
        "engine faust >= 10,000 windows/s",
        lambda r: (
            None
            if "faust_json" not in r["windows_per_s"]
            else r["windows_per_s"]["faust_json"] >= 10_000
        ),
    ),
    ("two_vs_one", "2 processes >= 1.4 x one", _ratio("two_vs_one", 1.4)),
    (
        "recommended_vs_loop",
        "recommended model: json >= 1.2 x the loop running it",
        _ratio("recommended_vs_loop", 1.2),
    ),
    ("json_vs_raw", "ecgwatch_json >= 0.5 x raw aiokafka", _ratio("json_vs_raw", 0.5)),
    ("binary_vs_raw", "ecgwatch_binary >= 0.7 x raw aiokafka", _ratio("binary_vs_raw", 0.7)),
    ("binary_vs_naive", "ecgwatch_binary >= 100 x naive", _ratio("binary_vs_naive", 100)),
    ("p99", "p99 latency <= 50 ms at 2,000/s", lambda r: (r["latency_ms"]["p99"] or 1e9) <= 50),
    (
        "scorer_256",
        "scorer at batch 256 >= 0.5 x numpy",
        lambda r: r["scorer_windows_per_s"]["256"] >= 0.5 * r["numpy_windows_per_s"]["256"],
    ),
    ("rss", "worker peak RSS <= 1 GiB", lambda r: (r["worker_peak_rss_mb"] or 1e9) <= 1024),
)


def targets(report: dict[str, Any]) -> dict[str, bool | None]:
    """Whether each target is met (None: not measured in this run)."""
    out: dict[str, bool | None] = {}
    for name, _, check in TARGETS:
        met = check(report)
        out[name] = None if met is None else bool(met)
    return out


#: (label, key in ``windows_per_s``, key of the loop it is compared with) of each throughput
#: row; absent keys are left out (and listed under "not measured" when the report says why).
_THROUGHPUT_ROWS = (
    ("raw librdkafka (consume, no work)", "raw_librdkafka", "loop"),
    ("raw aiokafka (getmany, no work)", "raw_aiokafka", "loop"),
    ("naive (Faust + predict per msg)", "naive", "loop"),
    ("hand-written confluent-kafka loop", "loop", "loop"),
    ("ecgwatch worker, JSON (batch)", "ecgwatch_json", "loop"),
    ("ecgwatch worker, JSON, 2 processes", "ecgwatch_json_2proc", "loop"),
    ("ecgwatch worker, binary (batch)", "ecgwatch_binary", "loop"),
    ("bare Faust agent (no work)", "raw_faust", "loop"),
    ("ecgwatch worker, JSON (faust)", "faust_json", "loop"),
    ("loop, recommended model", "loop_recommended", "loop_recommended"),
    ("worker JSON, recommended model", "ecgwatch_json_recommended", "loop_recommended"),
)

_SCORER_BATCHES = ("1", "32", "256", "4096")


def _throughput_lines(r: dict[str, Any]) -> list[str]:
    w, ratio = r["windows_per_s"], r["ratio"]
    lines = [f"{'throughput':<34}{'windows/s':>14}{'x loop':>9}"]
    for label, key, loop in _THROUGHPUT_ROWS:
        if key in w:
            vs = f"{w[key] / w[loop]:>9.3f}" if loop in w else f"{'-':>9}"
            lines.append(f"{label:<34}{w[key]:>14,.0f}{vs}")
    skipped = r.get("skipped", {})
    if skipped:
        lines += ["not measured:", *(f"  {k}: {why}" for k, why in skipped.items())]
    lines += [
        f"{'json / naive':<34}{ratio['json_vs_naive']:>14,.0f}x",
        f"{'binary / naive':<34}{ratio['binary_vs_naive']:>14,.0f}x",
    ]
    if "faust_vs_bare" in ratio:
        lines.append(f"{'faust / bare Faust agent':<34}{ratio['faust_vs_bare']:>14.2f}x")
    return lines


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
        *_settling_line(lat),
        f"broker floor (produce -> consume, no worker): p50 {floor['p50']:.1f} "
        f"ms, p99 {floor['p99']:.1f} ms"
        if floor.get("n")
        else "broker floor: not measured",
    ]


def _scorer_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"{'scorer (windows/s)':<20}{'batch 1':>12}{'32':>12}{'256':>12}{'4096':>12}"]
    for label, key in (
        ("keras (tf.function)", "keras_windows_per_s"),
        (f"detector ({r['scorer_backend']})", "scorer_windows_per_s"),
        ("bare numpy", "numpy_windows_per_s"),
    ):
        v = r[key]
        lines.append(f"{label:<20}" + "".join(f"{v[b]:>12,.0f}" for b in _SCORER_BATCHES))
    return lines


def _target_lines(r: dict[str, Any]) -> list[str]:
    met = targets(r)
    mark = {True: "x", False: " ", None: "-"}
    return [
        "targets ([-]: not measured in this run):",
        *(f"  [{mark[met[name]]}] {desc}" for name, desc, _ in TARGETS),
    ]


def _cpu_lines(r: dict[str, Any]) -> list[str]:
    """Cores used by each worker row, the broker and the rest (absent in older reports)."""
    cpu = r.get("cpu_cores") or {}
    if not cpu:
        return []

    def cores(v: float | None) -> str:
        return "  ?" if v is None else f"{v:4.2f}"

    lines = ["cores, first batch -> last score (median)     worker   broker    other"]
    for key, parts in cpu.items():
        lines.append(
            f"  {key:<42}  {cores(parts.get('worker'))}     {cores(parts.get('broker'))}"
            f"     {cores(parts.get('other'))}"
        )
    return [*lines, ""]


def _rss_line(r: dict[str, Any]) -> str:
    rss, loop = r["worker_peak_rss_mb"], r.get("loop_peak_rss_mb")
    line = f"worker peak RSS: {rss:.0f} MiB" if rss is not None else "worker peak RSS: unknown"
    return line + (f" (hand-written loop: {loop:.0f} MiB)" if loop is not None else "")


def format_report(r: dict[str, Any]) -> str:
    """Human-readable table of one run.

    Parameters
    ----------
    r : dict
        A report from :func:`benchmarks.harness.run_bench`.

    Returns
    -------
    str
        Throughput, latency and scorer tables, how the cores split, peak RSS and which
        targets are met.
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
            *_cpu_lines(r),
            _rss_line(r),
            "",
            *_target_lines(r),
        ]
    )


def _settling_line(lat: dict[str, Any]) -> list[str]:
    """The start-up transient, streamed before the timed run (absent in older reports)."""
    st = lat.get("settling") or {}
    if not st.get("n"):
        return []
    return [
        f"  the {st['seconds']:.0f} s streamed before it (worker just started): p50 "
        f"{st['p50']:.1f} ms, p99 {st['p99']:.1f} ms, max {st['max']:.1f} ms"
    ]
