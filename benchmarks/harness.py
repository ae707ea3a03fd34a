"""Orchestrate one benchmark run: broker, model, topics, every measurement, the report."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.kafka_io import create_topics, fill, raw_consume, read_score_times, wait_committed
from benchmarks.scorer import bench_scorer
from benchmarks.worker_runs import Worker, measure_latency

__all__ = ["BenchOptions", "run_bench"]


@dataclass(frozen=True)
class BenchOptions:
    """What one ``ecgwatch bench`` run does."""

    windows: int = 200_000
    repeats: int = 3
    naive_windows: int = 300
    latency_rate: float = 2000.0
    latency_s: float = 30.0
    bootstrap: str | None = None
    registry: str | None = None
    data: str | None = None
    faust_engine: bool = True
    partitions: int = 8


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _dataset(data: str | None) -> np.ndarray:
    from training import load_dataset

    if data is None:
        shared = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
        data = str(shared) if (shared / "ECG5000_TEST.tsv").is_file() else None
    return np.asarray(load_dataset(data).x, dtype=np.float64)


def _registry(opts: BenchOptions, tmp: Path) -> str:
    from detector import ModelRegistry

    if opts.registry:
        ModelRegistry(opts.registry).load("latest")  # fail early with the registry's message
        return opts.registry
    reg = tmp / "models"
    _say("training the seed model into a throwaway registry (~20 s)")
    cmd = [
        sys.executable,
        "-m",
        "ecgwatch",
        "train",
        "--preset",
        "seed",
        "--registry",
        str(reg),
        "--quiet",
    ]
    shared = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    if opts.data or (shared / "ECG5000_TEST.tsv").is_file():
        cmd += ["--data", opts.data or str(shared)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return str(reg)


def _worker_rate(
    tmp: Path,
    bootstrap: str,
    registry: str,
    windows_topic: str,
    prefix: str,
    n: int,
    engine: str,
    rss: list[float],
) -> float:
    """Windows/s of one worker: first batch consumed → last score record appended."""
    w = Worker(tmp, bootstrap, registry, windows_topic, prefix, engine)
    try:
        wait_committed(bootstrap, prefix, windows_topic, n, timeout_s=900)
        rss.append(w.rss_mb())
    finally:
        w.stop()
    got, last = read_score_times(bootstrap, w.scores, n, timeout_s=60)
    if got < n or w.first_at is None:
        raise RuntimeError(f"worker {prefix} scored {got}/{n} windows:\n{w.tail()}")
    return n / max(last - w.first_at, 1e-6)


def _naive(bootstrap: str, topic: str, registry: str, n: int, tmp: Path) -> float:
    out = tmp / "naive.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.naive_worker",
            bootstrap,
            topic,
            registry,
            str(n),
            str(out),
        ],
        check=True,
        timeout=900,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    r = json.loads(out.read_text())
    return float(r["windows"] / r["seconds"])


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    """Run every measurement and return the report (see ``docs/performance.md``)."""
    from benchmarks.broker import broker_for
    from detector import ModelRegistry
    from pipeline.binary import binary_message
    from pipeline.codec import encode_window_json

    t_start = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory(prefix="ecgwatch-bench-") as td,
        broker_for(opts.bootstrap, Path(td)) as bootstrap,
    ):
        tmp = Path(td)
        registry = _registry(opts, tmp)
        beats = _dataset(opts.data)
        data = np.resize(beats, (opts.windows, beats.shape[1]))
        topics = {
            "json": f"bench.{run}.windows.json",
            "binary": f"bench.{run}.windows.binary",
            "latency": f"bench.{run}.windows.latency",
            "floor": f"bench.{run}.windows.floor",
        }
        names = {t: opts.partitions for t in topics.values()}
        outs = []
        tags = [f"{enc}{i}" for enc in ("json", "binary") for i in range(opts.repeats)]
        tags += [f"faust{i}" for i in range(opts.repeats if opts.faust_engine else 0)] + ["lat"]
        for tag in tags:
            for kind in ("scores", "alerts", "dlq"):
                outs.append(f"bench.{run}.{tag}.{kind}")
        names.update({o: opts.partitions for o in outs})
        create_topics(bootstrap, names, {o for o in outs if o.endswith(".scores")})
        _say(f"filling {opts.windows:,} JSON and {opts.windows:,} binary windows")
        fill(
            bootstrap, topics["json"], data, lambda d, s, t, x: (encode_window_json(d, s, t, x), [])
        )
        fill(bootstrap, topics["binary"], data, binary_message)
        res: dict[str, list[float]] = {
            k: [] for k in ("raw", "ecgwatch_json", "ecgwatch_binary", "faust_json")
        }
        rss: list[float] = []
        for i in range(opts.repeats):  # interleaved, so drift hits every contender alike
            _say(f"round {i + 1}/{opts.repeats}: raw, worker json, worker binary")
            res["raw"].append(raw_consume(bootstrap, topics["json"], opts.windows))
            res["ecgwatch_json"].append(
                _worker_rate(
                    tmp,
                    bootstrap,
                    registry,
                    topics["json"],
                    f"bench.{run}.json{i}",
                    opts.windows,
                    "batch",
                    rss,
                )
            )
            res["ecgwatch_binary"].append(
                _worker_rate(
                    tmp,
                    bootstrap,
                    registry,
                    topics["binary"],
                    f"bench.{run}.binary{i}",
                    opts.windows,
                    "batch",
                    rss,
                )
            )
            if opts.faust_engine:
                res["faust_json"].append(
                    _worker_rate(
                        tmp,
                        bootstrap,
                        registry,
                        topics["json"],
                        f"bench.{run}.faust{i}",
                        opts.windows,
                        "faust",
                        rss,
                    )
                )
        _say(f"naive baseline on {opts.naive_windows} windows")
        naive = _naive(bootstrap, topics["json"], registry, opts.naive_windows, tmp)
        _say(f"latency floor: produce -> consume at {opts.latency_rate:,.0f}/s, no worker")
        floor = measure_latency(
            bootstrap,
            topics["floor"],
            topics["floor"],
            beats,
            opts.latency_rate,
            min(opts.latency_s, 10.0),
        )
        _say(f"latency at {opts.latency_rate:,.0f}/s for {opts.latency_s:.0f} s")
        w = Worker(tmp, bootstrap, registry, topics["latency"], f"bench.{run}.lat", "batch")
        try:
            lat = measure_latency(
                bootstrap, topics["latency"], w.scores, beats, opts.latency_rate, opts.latency_s
            )
            rss.append(w.rss_mb())
        finally:
            w.stop()
        _say("scorer alone")
        scorer = bench_scorer(ModelRegistry(registry).load("latest"), beats[:4096])
    med = {k: statistics.median(v) for k, v in res.items() if v}
    med["naive"] = naive
    return {
        "windows": opts.windows,
        "repeats": opts.repeats,
        "windows_per_s": med,
        "runs": res,
        "ratio": {
            "json_vs_raw": med["ecgwatch_json"] / med["raw"],
            "binary_vs_raw": med["ecgwatch_binary"] / med["raw"],
            "json_vs_naive": med["ecgwatch_json"] / naive,
            "binary_vs_naive": med["ecgwatch_binary"] / naive,
            **(
                {"faust_json_vs_raw": med["faust_json"] / med["raw"]} if "faust_json" in med else {}
            ),
        },
        "latency_ms": {**lat, "rate": opts.latency_rate, "seconds": opts.latency_s},
        "latency_floor_ms": floor,
        "scorer_windows_per_s": scorer["detector"],
        "keras_windows_per_s": scorer["keras"],
        "numpy_windows_per_s": scorer["numpy"],
        "scorer_engine": scorer["engine"],
        "scorer_max_abs_diff": scorer["max_abs_diff_vs_numpy"],
        "worker_peak_rss_mb": max(rss) if rss else None,
        "seconds": time.perf_counter() - t_start,
    }
