"""``format_report``: the rows shown follow what the report holds."""

from __future__ import annotations

from typing import Any

from benchmarks.report import format_report, targets

SCORER = {"1": 1_000.0, "32": 20_000.0, "256": 100_000.0, "4096": 200_000.0}


def _report(**changes: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "windows": 20_000,
        "repeats": 1,
        "seconds": 61.0,
        "windows_per_s": {
            "raw_librdkafka": 200_000.0,
            "raw_aiokafka": 100_000.0,
            "loop": 40_000.0,
            "ecgwatch_json": 60_000.0,
            "ecgwatch_binary": 80_000.0,
            "naive": 500.0,
        },
        "ratio": {
            "json_vs_loop": 1.5,
            "binary_vs_loop": 2.0,
            "json_vs_raw": 0.6,
            "binary_vs_raw": 0.8,
            "json_vs_naive": 120.0,
            "binary_vs_naive": 160.0,
        },
        "latency_ms": {"n": 0, "p50": None, "p95": None, "p99": None, "max": None},
        "scorer_windows_per_s": SCORER,
        "keras_windows_per_s": SCORER,
        "numpy_windows_per_s": SCORER,
        "scorer_backend": "numpy",
        "worker_peak_rss_mb": 512.0,
    }
    r["latency_ms"].update(rate=2000.0, seconds=10.0)
    r.update(changes)
    return r


def test_a_run_without_faust_or_scores_or_floor() -> None:
    lines = format_report(_report()).splitlines()
    assert lines[0] == "ecgwatch bench: 20,000 windows, median of 1 run(s), 61 s"
    assert lines[2] == "throughput                             windows/s   x loop"
    assert lines[3] == "raw librdkafka (consume, no work)        200,000    5.000"
    assert lines[4] == "raw aiokafka (getmany, no work)          100,000    2.500"
    assert lines[6] == "hand-written confluent-kafka loop         40,000    1.000"
    assert lines[7] == "ecgwatch worker, JSON (batch)             60,000    1.500"
    assert not [line for line in lines if "(faust)" in line]
    assert "latency at 2,000/s for 10 s (0 windows): no scores seen" in lines
    assert "broker floor: not measured" in lines
    assert "detector (numpy)           1,000      20,000     100,000     200,000" in lines
    assert lines[-12:] == [
        "targets ([-]: not measured in this run):",
        "  [x] ecgwatch_json >= 1.5 x hand-written loop",
        "  [ ] ecgwatch_binary >= 3 x hand-written loop",
        "  [-] engine faust >= 10,000 windows/s",
        "  [-] 2 processes >= 1.4 x one",
        "  [-] recommended model: json >= 1.2 x the loop running it",
        "  [x] ecgwatch_json >= 0.5 x raw aiokafka",
        "  [x] ecgwatch_binary >= 0.7 x raw aiokafka",
        "  [x] ecgwatch_binary >= 100 x naive",
        "  [ ] p99 latency <= 50 ms at 2,000/s",
        "  [x] scorer at batch 256 >= 0.5 x numpy",
        "  [x] worker peak RSS <= 1 GiB",
    ]


def test_faust_row_latency_and_floor() -> None:
    r = _report(
        latency_ms={"n": 9, "p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0, "rate": 5.0},
        latency_floor_ms={"n": 9, "p50": 0.5, "p95": 0.7, "p99": 0.9, "max": 1.0},
    )
    r["latency_ms"]["seconds"] = 1.0
    r["windows_per_s"]["faust_json"] = 10_000.0
    r["windows_per_s"]["raw_faust"] = 12_500.0
    r["ratio"]["faust_vs_bare"] = 0.8
    lines = format_report(r).splitlines()
    assert "ecgwatch worker, JSON (faust)             10,000    0.250" in lines
    # the Faust engine's ceiling, side by side: a bare Faust agent in the same run
    assert "bare Faust agent (no work)                12,500    0.312" in lines
    assert "faust / bare Faust agent                    0.80x" in lines
    assert (
        "latency at 5/s for 1 s (9 windows): p50 1.0 ms, p95 2.0 ms, p99 3.0 ms, max 4.0 ms"
        in lines
    )
    assert "broker floor (produce -> consume, no worker): p50 0.5 ms, p99 0.9 ms" in lines


def test_recommended_rows_compare_with_the_loop_on_that_model_and_skips_are_named() -> None:
    r = _report(skipped={"ecgwatch_json_2proc": "needs `ecgwatch worker --processes`"})
    r["windows_per_s"].update(loop_recommended=10_000.0, ecgwatch_json_recommended=15_000.0)
    r["ratio"]["recommended_vs_loop"] = 1.5
    r["loop_peak_rss_mb"] = 250.0
    lines = format_report(r).splitlines()
    assert "loop, recommended model                   10,000    1.000" in lines
    assert "worker JSON, recommended model            15,000    1.500" in lines
    i = lines.index("not measured:")
    assert lines[i + 1] == "  ecgwatch_json_2proc: needs `ecgwatch worker --processes`"
    assert "worker peak RSS: 512 MiB (hand-written loop: 250 MiB)" in lines
    assert targets(r)["recommended_vs_loop"] is True
    assert targets(r)["two_vs_one"] is None


def test_the_cpu_split_is_shown_per_worker_row() -> None:
    cpu = {
        "ecgwatch_json": {"worker": 0.91, "broker": 0.45, "other": 0.3},
        "ecgwatch_json_2proc": {"worker": 1.2, "broker": None, "other": 0.5},
    }
    lines = format_report(_report(cpu_cores=cpu)).splitlines()
    at = lines.index("cores, first batch -> last score (median)     worker   broker    other")
    assert lines[at + 1].split() == ["ecgwatch_json", "0.91", "0.45", "0.30"]
    assert lines[at + 2].split() == ["ecgwatch_json_2proc", "1.20", "?", "0.50"]
    # An older report without the split shows no such table.
    assert not [line for line in format_report(_report()).splitlines() if "cores," in line]
