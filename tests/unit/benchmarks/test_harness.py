"""``run_bench`` with the broker, the workers and every measurement faked: which topics it
creates, in which order each round runs the contenders, and the report it builds."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import benchmarks.broker
import benchmarks.harness as harness
import detector
import training
from benchmarks.harness import BenchOptions, run_bench

RUN = "abcdef12"


class _FakeWorker:
    def __init__(
        self,
        log: list[tuple[Any, ...]],
        registry: str,
        topic: str,
        prefix: str,
        engine: str,
        processes: int = 1,
    ) -> None:
        log.append(
            ("worker", topic, prefix, engine)
            + ((registry,) if registry != "reg" else ())
            + ((f"x{processes}",) if processes != 1 else ())
        )
        self.scores = f"{prefix}.scores"
        self.first_at = 0.0
        self.proc = type("Proc", (), {"pid": len(log) - 1, "poll": lambda self: None})()

    def rss_mb(self) -> float:
        return 300.0

    def stop(self) -> None:
        pass

    def tail(self) -> str:
        return ""


class _FakeSplit:
    """Every worker run used ``pid / 10`` cores (the fake worker's pid: its place in the log),
    the broker 0.5, the rest 0.1."""

    def __init__(self, worker_pid: int, broker_pid: int | None) -> None:
        self.pid = worker_pid
        assert broker_pid is None  # the fake broker wrote no pid file

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def between(self, t0: float, t1: float) -> dict[str, Any]:
        assert t0 < t1  # first batch -> last score append
        return {"worker": self.pid / 10, "broker": 0.5, "other": 0.1, "seconds": t1 - t0}


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Fake every outside call of ``run_bench``; what it was asked to do is appended here."""
    calls: list[tuple[Any, ...]] = []

    @contextlib.contextmanager
    def broker_for(bootstrap: str | None, tmp: Path) -> Iterator[str]:
        yield "fake:9092"

    class Registry:
        def __init__(self, path: str) -> None:
            pass

        def load(self, version: str) -> str:
            return "artifact"

    def subprocesses(cmd: list[str], **kwargs: Any) -> Any:
        if cmd[2] == "benchmarks.handwritten_loop":  # BOOTSTRAP WINDOWS SCORES GROUP REG ...
            calls.append(("loop", cmd[4], cmd[6], cmd[7]))
            out = {"windows": int(cmd[9]), "first_at": 0.0, "peak_rss_mb": 200.0}
            Path(cmd[-1]).write_text(json.dumps(out))
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[2] == "benchmarks.bare_faust":  # BOOTSTRAP TOPIC COUNT OUT
            calls.append(("bare_faust", cmd[4]))
            out = {"events": int(cmd[5]), "first_at": 100.0, "last_at": 100.0 + int(cmd[5]) / 3000}
            Path(cmd[-1]).write_text(json.dumps(out))
            return subprocess.CompletedProcess(cmd, 0, "", "")
        calls.append(("naive", cmd[3:7]))
        Path(cmd[-1]).write_text(json.dumps({"windows": 100, "seconds": 10.0}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    def latency(
        bootstrap: str, windows: str, scores: str, *args: Any, settle_s: float = 0.0
    ) -> dict[str, Any]:
        assert settle_s == harness.SETTLE_S  # the floor and the worker settle alike
        calls.append(("latency", windows, scores))
        return {"n": 1, "p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0}

    scorer = {"detector": {}, "keras": {}, "numpy": {}, "backend": "numpy"}
    m = monkeypatch
    m.setattr(benchmarks.broker, "broker_for", broker_for)
    m.setattr(detector, "ModelRegistry", Registry)
    m.setattr(training, "load_dataset", lambda data: type("DS", (), {"x": np.ones((5, 140))}))
    m.setattr(uuid, "uuid4", lambda: uuid.UUID(RUN + "0" * 24))
    m.setattr(subprocess, "run", subprocesses)
    m.setattr(
        harness, "create_topics", lambda b, names, log_append: calls.append(("topics", names))
    )
    m.setattr(harness, "fill", lambda b, topic, data, enc: calls.append(("fill", topic, len(data))))
    m.setattr(harness, "raw_consume", lambda b, topic, n: calls.append(("raw", topic)) or 2000.0)
    m.setattr(
        harness, "raw_librdkafka", lambda b, topic, n: calls.append(("rdkafka", topic)) or 4000.0
    )
    m.setattr(harness, "Worker", lambda tmp, b, reg, *a: _FakeWorker(calls, reg, *a))
    m.setattr(harness, "CpuSplit", _FakeSplit)
    m.setattr(harness, "wait_committed", lambda *a, **kw: True)
    m.setattr(harness, "read_score_times", lambda b, topic, n, timeout_s: (n, n / 2000))
    m.setattr(harness, "measure_latency", latency)
    m.setattr(harness, "bench_scorer", lambda art, w: {**scorer, "max_abs_diff_vs_numpy": 0.0})
    return calls


def _t(name: str) -> str:
    return f"bench.{RUN}.{name}"


def test_every_round_runs_every_contender_on_its_own_topics(log: list[tuple[Any, ...]]) -> None:
    report = run_bench(BenchOptions(windows=50, repeats=2, registry="reg", partitions=3))
    topics = next(c[1] for c in log if c[0] == "topics")
    inputs = [_t(f"windows.{k}") for k in ("json", "binary", "latency", "floor")]
    tags = ["loop0", "loop1", "json0", "json1", "json2p0", "json2p1", "binary0", "binary1"]
    tags += ["faust0", "faust1", "lat"]
    outs = [_t(f"{tag}.{kind}") for tag in tags for kind in ("scores", "alerts", "dlq")]
    assert topics == {t: 3 for t in (*inputs, *outs)}
    assert list(topics) == [*inputs, *outs]
    assert [c for c in log if c[0] == "fill"] == [
        ("fill", _t("windows.json"), 50),
        ("fill", _t("windows.binary"), 50),
    ]
    steps = ("rdkafka", "raw", "loop", "worker", "bare_faust")
    rounds = [c for c in log if c[0] in steps and c[1] != _t("windows.latency")]
    assert rounds == [
        step
        for i in range(2)
        for step in [
            ("rdkafka", _t("windows.json")),
            ("raw", _t("windows.json")),
            ("loop", _t("windows.json"), _t(f"loop{i}"), "reg"),
            ("worker", _t("windows.json"), _t(f"json{i}"), "batch"),
            ("worker", _t("windows.json"), _t(f"json2p{i}"), "batch", "x2"),
            ("worker", _t("windows.binary"), _t(f"binary{i}"), "batch"),
            ("bare_faust", _t("windows.json")),
            ("worker", _t("windows.json"), _t(f"faust{i}"), "faust"),
        ]
    ]
    assert [c for c in log if c[0] in ("naive", "latency")] == [
        ("naive", ["fake:9092", _t("windows.json"), "reg", "300"]),
        ("latency", _t("windows.floor"), _t("windows.floor")),
        ("latency", _t("windows.latency"), _t("lat.scores")),
    ]
    measured = {
        "raw_librdkafka": [pytest.approx(4000.0)] * 2,
        "raw_faust": [pytest.approx(3000.0)] * 2,
    }
    assert report["runs"] == {
        **{k: [pytest.approx(2000.0)] * 2 for k in report["runs"]},
        **measured,
        "loop_recommended": [],
        "ecgwatch_json_recommended": [],
    }
    assert report["windows_per_s"] == pytest.approx(
        {
            "raw_librdkafka": 4000,
            "raw_aiokafka": 2000,
            "loop": 2000,
            "ecgwatch_json": 2000,
            "ecgwatch_json_2proc": 2000,
            "ecgwatch_binary": 2000,
            "raw_faust": 3000,
            "faust_json": 2000,
            "naive": 10,
        }
    )
    assert report["ratio"] == pytest.approx(
        {
            "json_vs_loop": 1,
            "binary_vs_loop": 1,
            "json_vs_raw": 1,
            "binary_vs_raw": 1,
            "json_vs_naive": 200,
            "binary_vs_naive": 200,
            "faust_json_vs_raw": 1,
            "faust_json_vs_loop": 1,
            "faust_vs_bare": 2000 / 3000,
            "two_vs_one": 1,
        }
    )
    assert set(report["skipped"]) == {"loop_recommended", "ecgwatch_json_recommended"}
    assert report["latency_ms"]["seconds"] == 30.0
    assert report["worker_peak_rss_mb"] == 300.0
    assert report["loop_peak_rss_mb"] == 200.0
    # How the cores split: medians over the rounds, for every worker row and no other.
    workers = [i for i, c in enumerate(log) if c[0] == "worker"]
    pid = {c[2]: i for i, c in enumerate(log) if c[0] == "worker"}
    assert len(workers) == 9  # 4 rows x 2 rounds + the latency worker (not a throughput row)
    assert report["cpu_cores"] == {
        key: {
            "worker": pytest.approx((pid[_t(f"{tag}0")] + pid[_t(f"{tag}1")]) / 20),
            "broker": 0.5,
            "other": 0.1,
        }
        for key, tag in (
            ("ecgwatch_json", "json"),
            ("ecgwatch_json_2proc", "json2p"),
            ("ecgwatch_binary", "binary"),
            ("faust_json", "faust"),
        )
    }


def test_a_recommended_registry_adds_the_loop_and_the_worker_on_it(
    log: list[tuple[Any, ...]],
) -> None:
    opts = BenchOptions(
        windows=50, repeats=1, registry="reg", faust_engine=False, recommended_registry="rec"
    )
    report = run_bench(opts)
    rounds = [c for c in log if c[0] in ("loop", "worker") and c[1] != _t("windows.latency")]
    assert rounds == [
        ("loop", _t("windows.json"), _t("loop0"), "reg"),
        ("worker", _t("windows.json"), _t("json0"), "batch"),
        ("worker", _t("windows.json"), _t("json2p0"), "batch", "x2"),
        ("worker", _t("windows.binary"), _t("binary0"), "batch"),
        ("loop", _t("windows.json"), _t("looprec0"), "rec"),
        ("worker", _t("windows.json"), _t("jsonrec0"), "batch", "rec"),
    ]
    assert report["windows_per_s"]["loop_recommended"] == pytest.approx(2000)
    assert report["windows_per_s"]["ecgwatch_json_recommended"] == pytest.approx(2000)
    assert report["ratio"]["recommended_vs_loop"] == pytest.approx(1)
    assert set(report["skipped"]) == {"raw_faust", "faust_json"}


def test_without_faust_its_row_stays_empty(log: list[tuple[Any, ...]]) -> None:
    report = run_bench(BenchOptions(windows=50, repeats=1, registry="reg", faust_engine=False))
    topics = next(c[1] for c in log if c[0] == "topics")
    assert not [t for t in topics if ".faust" in t]
    assert not [c for c in log if c[0] == "worker" and c[3] == "faust"]
    assert not [c for c in log if c[0] == "bare_faust"]
    assert report["runs"]["faust_json"] == []
    assert "faust_json" not in report["windows_per_s"]
    assert "faust_json_vs_raw" not in report["ratio"]
