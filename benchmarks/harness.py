"""Orchestrate one benchmark run: broker, model, topics, every measurement, the report."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cpu import CpuSplit
from benchmarks.handwritten_loop import raw_librdkafka
from benchmarks.kafka_io import create_topics, fill, raw_consume, read_score_times, wait_committed
from benchmarks.scorer import bench_scorer
from benchmarks.worker_runs import Worker, measure_latency

__all__ = ["BenchOptions", "run_bench"]

#: Seconds streamed at the latency rate before the timed stream: the p99 target is the steady
#: state's; the first seconds (a worker that has just scored its first batch) are reported
#: apart, as ``latency_ms.settling`` (docs/performance.md, "The p99 tail").
SETTLE_S = 3.0

#: The pre-filled input topics, by encoding; the latency runs have topics of their own.
_INPUTS = ("json", "binary")


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
    #: A registry whose latest model is the ``recommended`` preset: adds the
    #: ``loop_recommended`` and ``ecgwatch_json_recommended`` rows (None: both skipped).
    recommended_registry: str | None = None


@dataclass(frozen=True)
class _Bench:
    """What every measurement of one run shares: broker, models, topic names, peak RSS seen."""

    tmp: Path
    bootstrap: str
    registry: str
    run: str
    windows: int
    recommended: str | None = None
    #: The throwaway broker's JVM (None for a broker given by ``--bootstrap``).
    broker_pid: int | None = None
    rss: list[float] = field(default_factory=list)
    loop_rss: list[float] = field(default_factory=list)
    #: The CPU split of each worker run, by its output prefix (``benchmarks.cpu``).
    cpu: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model(self, recommended: bool) -> str:
        """The registry of the seed model, or of the recommended one."""
        if not recommended:
            return self.registry
        if self.recommended is None:
            raise ValueError("no recommended registry given")
        return self.recommended

    def topic(self, name: str) -> str:
        """This run's topic or output prefix ``name`` (such as ``json0``, ``json0.scores``)."""
        return f"bench.{self.run}.{name}"

    def windows_topic(self, name: str) -> str:
        """This run's input topic ``name`` (``json``, ``binary``, ``latency``, ``floor``)."""
        return self.topic(f"windows.{name}")


#: ``(bench, input topic, output prefix) -> windows/s`` over all ``bench.windows`` windows.
_Measure = Callable[[_Bench, str, str], float]


@dataclass(frozen=True)
class _Contender:
    """One throughput row of the report, measured once per round on a pre-filled topic.

    Attributes
    ----------
    key : str
        Its key in the report's ``windows_per_s`` and ``runs``.
    source : str
        The input topic it reads, one of ``_INPUTS``.
    measure : _Measure
        How it is timed; called with the output prefix ``bench.RUN.TAGi`` in round ``i``.
    tag : str or None
        Stem of its per-round output topics (``.scores``, ``.alerts``, ``.dlq``); None when
        it writes nothing.
    faust : bool
        Whether it runs the Faust engine (skipped with ``--no-faust``).
    recommended : bool
        Whether it runs the ``recommended`` model (skipped without a recommended registry).
    """

    key: str
    source: str
    measure: _Measure
    tag: str | None = None
    faust: bool = False
    recommended: bool = False


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _shared_data() -> str | None:
    """The checkout's ``shared/data`` folder when it holds ECG5000, else None."""
    shared = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return str(shared) if (shared / "ECG5000_TEST.tsv").is_file() else None


def _dataset(data: str | None) -> np.ndarray:
    from training import load_dataset

    return np.asarray(load_dataset(_shared_data() if data is None else data).x, dtype=np.float64)


def _registry(opts: BenchOptions, tmp: Path) -> str:
    from detector import ModelRegistry

    if opts.registry:
        ModelRegistry(opts.registry).load("latest")  # fail early with the registry's message
        return opts.registry
    reg = tmp / "models"
    _say("training the seed model into a throwaway registry (~20 s)")
    cmd = [sys.executable, "-m", "ecgwatch", "train", "--preset", "seed"]
    cmd += ["--registry", str(reg), "--quiet"]
    data = opts.data or _shared_data()
    if data:
        cmd += ["--data", data]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return str(reg)


def _worker_rate(
    b: _Bench,
    topic: str,
    prefix: str,
    engine: str,
    recommended: bool = False,
    processes: int = 1,
) -> float:
    """Windows/s of one worker: first batch consumed → last score record appended."""
    w = Worker(b.tmp, b.bootstrap, b.model(recommended), topic, prefix, engine, processes)
    split = CpuSplit(w.proc.pid, b.broker_pid)
    split.start()  # from start-up, so the first batch is covered however soon it comes
    try:
        wait_committed(b.bootstrap, prefix, topic, b.windows, timeout_s=900)
        b.rss.append(w.rss_mb())
    finally:
        split.stop()
        w.stop()
    got, last = read_score_times(b.bootstrap, w.scores, b.windows, timeout_s=60)
    if got < b.windows or w.first_at is None:
        raise RuntimeError(f"worker {prefix} scored {got}/{b.windows} windows:\n{w.tail()}")
    cpu = split.between(w.first_at, last)  # the stretch the windows/s is measured over
    if cpu is not None:
        b.cpu[prefix] = cpu
    return b.windows / max(last - w.first_at, 1e-6)


def _loop_rate(b: _Bench, topic: str, prefix: str, recommended: bool = False) -> float:
    """Windows/s of the hand-written loop (``benchmarks.handwritten_loop``), timed as a worker.

    A process of its own like the worker: first batch consumed → last score record appended.
    """
    out = b.tmp / f"{prefix}.loop.json"
    scores = f"{prefix}.scores"
    cmd = [sys.executable, "-m", "benchmarks.handwritten_loop", b.bootstrap, topic, scores]
    cmd += [prefix, b.model(recommended), "latest", str(b.windows), str(out)]
    proc = subprocess.run(cmd, timeout=900, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"hand-written loop {prefix} failed:\n{proc.stderr[-2000:]}")
    r = json.loads(out.read_text())
    if r.get("peak_rss_mb"):
        b.loop_rss.append(float(r["peak_rss_mb"]))
    got, last = read_score_times(b.bootstrap, scores, b.windows, timeout_s=60)
    if got < b.windows or r["first_at"] is None:
        raise RuntimeError(f"hand-written loop {prefix} scored {got}/{b.windows} windows")
    return b.windows / max(last - float(r["first_at"]), 1e-6)


def _raw_aiokafka(b: _Bench, topic: str, prefix: str) -> float:
    return raw_consume(b.bootstrap, topic, b.windows)


def _raw_librdkafka(b: _Bench, topic: str, prefix: str) -> float:
    return raw_librdkafka(b.bootstrap, topic, b.windows)


def _loop(b: _Bench, topic: str, prefix: str) -> float:
    return _loop_rate(b, topic, prefix)


def _loop_recommended(b: _Bench, topic: str, prefix: str) -> float:
    return _loop_rate(b, topic, prefix, recommended=True)


def _batch_worker(b: _Bench, topic: str, prefix: str) -> float:
    return _worker_rate(b, topic, prefix, "batch")


def _batch_worker_2proc(b: _Bench, topic: str, prefix: str) -> float:
    return _worker_rate(b, topic, prefix, "batch", processes=2)


def _bare_faust(b: _Bench, topic: str, prefix: str) -> float:
    """Events/s of a Faust agent that does nothing (``benchmarks.bare_faust``): the Faust
    engine's ceiling on this machine, first batch -> last batch."""
    fd, name = tempfile.mkstemp(prefix="bare-faust-", suffix=".json", dir=b.tmp)
    os.close(fd)
    out = Path(name)
    cmd = [sys.executable, "-m", "benchmarks.bare_faust", b.bootstrap, topic, str(b.windows)]
    proc = subprocess.run([*cmd, str(out)], timeout=900, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bare Faust agent failed:\n{proc.stderr[-2000:]}")
    r = json.loads(out.read_text())
    return float(r["events"]) / max(float(r["last_at"]) - float(r["first_at"]), 1e-6)


def _faust_worker(b: _Bench, topic: str, prefix: str) -> float:
    return _worker_rate(b, topic, prefix, "faust")


def _batch_worker_recommended(b: _Bench, topic: str, prefix: str) -> float:
    return _worker_rate(b, topic, prefix, "batch", recommended=True)


#: Every throughput contender, in the order each round runs them.
_CONTENDERS = (
    _Contender("raw_librdkafka", "json", _raw_librdkafka),
    _Contender("raw_aiokafka", "json", _raw_aiokafka),
    _Contender("loop", "json", _loop, tag="loop"),
    _Contender("ecgwatch_json", "json", _batch_worker, tag="json"),
    _Contender("ecgwatch_json_2proc", "json", _batch_worker_2proc, tag="json2p"),
    _Contender("ecgwatch_binary", "binary", _batch_worker, tag="binary"),
    _Contender("raw_faust", "json", _bare_faust, faust=True),
    _Contender("faust_json", "json", _faust_worker, tag="faust", faust=True),
    _Contender("loop_recommended", "json", _loop_recommended, tag="looprec", recommended=True),
    _Contender(
        "ecgwatch_json_recommended",
        "json",
        _batch_worker_recommended,
        tag="jsonrec",
        recommended=True,
    ),
)

#: Rows of the issue's report that no contender measures yet, and why.
_NOT_YET: dict[str, str] = {}


def _runs(c: _Contender, opts: BenchOptions) -> bool:
    if c.faust and not opts.faust_engine:
        return False
    return not (c.recommended and opts.recommended_registry is None)


def _contenders(opts: BenchOptions) -> list[_Contender]:
    return [c for c in _CONTENDERS if _runs(c, opts)]


def _skipped(opts: BenchOptions) -> dict[str, str]:
    """Report keys left out of this run, with the reason."""
    out = {}
    for c in _CONTENDERS:
        if c.faust and not opts.faust_engine:
            out[c.key] = "--no-faust"
        elif c.recommended and opts.recommended_registry is None:
            out[c.key] = "no --recommended-registry given"
    return {**out, **_NOT_YET}


def _create_topics(b: _Bench, opts: BenchOptions) -> None:
    """Inputs, the two latency topics and the outputs of every worker in every round."""
    inputs = [b.windows_topic(name) for name in (*_INPUTS, "latency", "floor")]
    tags = [f"{c.tag}{i}" for c in _contenders(opts) if c.tag for i in range(opts.repeats)]
    outs = [
        b.topic(f"{tag}.{kind}") for tag in (*tags, "lat") for kind in ("scores", "alerts", "dlq")
    ]
    names = {t: opts.partitions for t in (*inputs, *outs)}
    create_topics(b.bootstrap, names, {o for o in outs if o.endswith(".scores")})


def _fill_inputs(b: _Bench, data: np.ndarray) -> None:
    from pipeline.binary import binary_message
    from pipeline.codec import encode_window_json

    _say(f"filling {b.windows:,} JSON and {b.windows:,} binary windows")
    fill(
        b.bootstrap,
        b.windows_topic("json"),
        data,
        lambda d, s, t, x: (encode_window_json(d, s, t, x), []),
    )
    fill(b.bootstrap, b.windows_topic("binary"), data, binary_message)


def _rounds(
    b: _Bench, opts: BenchOptions
) -> tuple[dict[str, list[float]], dict[str, list[dict[str, Any]]]]:
    """Windows/s of every contender in every round, by report key; and the CPU split of
    each worker contender's rounds."""
    runs: dict[str, list[float]] = {c.key: [] for c in _CONTENDERS}
    cpu: dict[str, list[dict[str, Any]]] = {}
    for i in range(opts.repeats):  # interleaved, so drift hits every contender alike
        names = ", ".join(c.key for c in _contenders(opts))
        _say(f"round {i + 1}/{opts.repeats}: {names}")
        for c in _contenders(opts):
            prefix = b.topic(f"{c.tag}{i}") if c.tag else ""
            runs[c.key].append(c.measure(b, b.windows_topic(c.source), prefix))
            if prefix in b.cpu:
                cpu.setdefault(c.key, []).append(b.cpu.pop(prefix))
    return runs, cpu


def _cpu_cores(cpu: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Median cores of each part (worker, broker, other) over a contender's rounds."""
    out: dict[str, dict[str, Any]] = {}
    for key, rounds in cpu.items():
        out[key] = {}
        for part in ("worker", "broker", "other"):
            values = [r[part] for r in rounds if r.get(part) is not None]
            out[key][part] = round(statistics.median(values), 2) if values else None
    return out


def _broker_pid(bootstrap: str | None, tmp: Path) -> int | None:
    """The throwaway broker's pid (``benchmarks.broker.broker_for`` starts it in ``tmp``)."""
    if bootstrap:
        return None
    try:
        return int((tmp / "kafka" / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _naive(b: _Bench, n: int) -> float:
    """Windows/s of the tutorial-style Faust worker (``benchmarks.naive_worker``) on ``n``."""
    out = b.tmp / "naive.json"
    cmd = [sys.executable, "-m", "benchmarks.naive_worker", b.bootstrap, b.windows_topic("json")]
    cmd += [b.registry, str(n), str(out)]
    subprocess.run(
        cmd, check=True, timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    r = json.loads(out.read_text())
    return float(r["windows"] / r["seconds"])


def _latencies(
    b: _Bench, beats: np.ndarray, opts: BenchOptions
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The broker's floor (produce -> consume, no worker), then a worker's latency."""
    rate = opts.latency_rate
    _say(f"latency floor: produce -> consume at {rate:,.0f}/s, no worker")
    floor_topic = b.windows_topic("floor")
    floor = measure_latency(
        b.bootstrap,
        floor_topic,
        floor_topic,
        beats,
        rate,
        min(opts.latency_s, 10.0),
        settle_s=SETTLE_S,
    )
    _say(f"latency at {rate:,.0f}/s for {opts.latency_s:.0f} s")
    windows = b.windows_topic("latency")
    w = Worker(b.tmp, b.bootstrap, b.registry, windows, b.topic("lat"), "batch")
    try:
        lat = measure_latency(
            b.bootstrap, windows, w.scores, beats, rate, opts.latency_s, settle_s=SETTLE_S
        )
        b.rss.append(w.rss_mb())
    finally:
        w.stop()
    return floor, lat


def _throughput(opts: BenchOptions, runs: dict[str, list[float]], naive: float) -> dict[str, Any]:
    """The report's throughput part: medians over the rounds and the ratios of the targets."""
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    med["naive"] = naive
    ratio = {
        # issue 13: against the hand-written confluent-kafka loop, same model
        "json_vs_loop": med["ecgwatch_json"] / med["loop"],
        "binary_vs_loop": med["ecgwatch_binary"] / med["loop"],
        # issue 5: against raw aiokafka consumption and the naive Faust agent
        "json_vs_raw": med["ecgwatch_json"] / med["raw_aiokafka"],
        "binary_vs_raw": med["ecgwatch_binary"] / med["raw_aiokafka"],
        "json_vs_naive": med["ecgwatch_json"] / naive,
        "binary_vs_naive": med["ecgwatch_binary"] / naive,
    }
    for key, num, den in (
        ("faust_json_vs_raw", "faust_json", "raw_aiokafka"),
        ("faust_json_vs_loop", "faust_json", "loop"),
        # the Faust engine against a Faust agent that does no work: its ceiling here
        ("faust_vs_bare", "faust_json", "raw_faust"),
        ("recommended_vs_loop", "ecgwatch_json_recommended", "loop_recommended"),
        ("two_vs_one", "ecgwatch_json_2proc", "ecgwatch_json"),
    ):
        if num in med and den in med:
            ratio[key] = med[num] / med[den]
    return {
        "windows": opts.windows,
        "repeats": opts.repeats,
        "windows_per_s": med,
        "runs": runs,
        "ratio": ratio,
        "skipped": _skipped(opts),
    }


def _scorer_fields(scorer: dict[str, Any]) -> dict[str, Any]:
    """The report's scorer part, from :func:`benchmarks.scorer.bench_scorer`."""
    return {
        "scorer_windows_per_s": scorer["detector"],
        "keras_windows_per_s": scorer["keras"],
        "numpy_windows_per_s": scorer["numpy"],
        "scorer_backend": scorer["backend"],
        "scorer_max_abs_diff": scorer["max_abs_diff_vs_numpy"],
    }


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    """Run every measurement and return the report (see ``docs/performance.md``).

    Parameters
    ----------
    opts : BenchOptions
        Sizes, rates, and which broker, registry and data to use.

    Returns
    -------
    dict
        The report: windows/s of every contender (medians and every round), their ratios,
        the contenders left out and why (``skipped``), latency percentiles (worker and
        broker floor), scorer windows/s per batch size, the peak RSS of the workers and of
        the hand-written loop, and the run's seconds; JSON-serialisable.
    """
    from benchmarks.broker import broker_for
    from detector import ModelRegistry

    if opts.recommended_registry:
        ModelRegistry(opts.recommended_registry).load("latest")  # fail early, as _registry
    t_start = time.perf_counter()
    run = uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory(prefix="ecgwatch-bench-") as td,
        broker_for(opts.bootstrap, Path(td)) as bootstrap,
    ):
        tmp = Path(td)
        b = _Bench(
            tmp,
            bootstrap,
            _registry(opts, tmp),
            run,
            opts.windows,
            opts.recommended_registry,
            _broker_pid(opts.bootstrap, tmp),
        )
        beats = _dataset(opts.data)
        _create_topics(b, opts)
        _fill_inputs(b, np.resize(beats, (opts.windows, beats.shape[1])))
        runs, cpu = _rounds(b, opts)
        _say(f"naive baseline on {opts.naive_windows} windows")
        naive = _naive(b, opts.naive_windows)
        floor, lat = _latencies(b, beats, opts)
        _say("scorer alone")
        scorer = bench_scorer(ModelRegistry(b.registry).load("latest"), beats[:4096])
    return {
        **_throughput(opts, runs, naive),
        "latency_ms": {**lat, "rate": opts.latency_rate, "seconds": opts.latency_s},
        "latency_floor_ms": floor,
        **_scorer_fields(scorer),
        "cpu_cores": _cpu_cores(cpu),
        "worker_peak_rss_mb": max(b.rss) if b.rss else None,
        "loop_peak_rss_mb": max(b.loop_rss) if b.loop_rss else None,
        "seconds": time.perf_counter() - t_start,
    }
