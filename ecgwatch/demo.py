"""The end-to-end demo: broker → topics → model → worker → replay → summary → clean shutdown.

Everything it starts it also stops, in reverse order, also on Ctrl-C. The broker runs in a
fresh data folder per demo so the counts in the summary are exactly this run's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgwatch.errors import EcgwatchError
from pipeline.settings import DEFAULT_TOPICS

__all__ = ["DemoOptions", "run_demo"]

BAD_MESSAGES: list[bytes] = [
    b"{not json",
    b'{"device_id": "dev-bad", "seq": 1, "ts": 0, "samples": [1, 2, 3]}',
    b'{"device_id": "dev-bad", "seq": 2, "ts": 0}',
    b"",
    b'{"device_id": "dev-bad", "seq": -3, "ts": 0, "samples": []}',
]


@dataclass
class DemoOptions:
    """Settings of one demo run."""

    registry: Path
    preset: str = "recommended"
    data: str | None = None
    devices: int = 10
    rate: float | None = None
    workdir: Path = Path(".ecgwatch/demo")
    port: int | None = None
    metrics_port: int | None = None
    timeout_s: float = 180.0


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _wait_http(url: str, deadline: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise EcgwatchError(f"the worker exited ({proc.returncode}): {' | '.join(tail)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise EcgwatchError(f"the worker did not become ready ({url}); see {log}")


def _stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ensure_model(opts: DemoOptions) -> Path:
    from detector import ModelRegistry, RegistryError

    reg = ModelRegistry(opts.registry)
    try:
        path = reg.resolve()
        reg.load()  # verified before the demo relies on it
        _say(f"model: {path} (already in the registry)")
        return path
    except RegistryError:
        pass
    from ecgwatch.native_logs import quiet_training
    from training import load_config, train

    _say(f"registry {opts.registry} is empty: training the '{opts.preset}' preset")
    with quiet_training():
        result = train(
            load_config(opts.preset), data=opts.data, registry=opts.registry, verbose=0, log=_say
        )
    assert result.path is not None
    _say(f"model: {result.path} (trained in {result.seconds:.1f} s)")
    return result.path


def run_demo(opts: DemoOptions, out: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo and return the summary (also printed)."""
    from ecgwatch import broker
    from ecgwatch.cli_common import load_windows, progress_display
    from pipeline.replay import replay
    from pipeline.topics import create_topics, default_topics

    opts.workdir.mkdir(parents=True, exist_ok=True)
    run_dir = opts.workdir / time.strftime("run-%Y%m%dT%H%M%S")
    with ExitStack() as stack:
        kafka_port, ctl_port, metrics_port = broker.free_ports(3)
        kafka_port = opts.port or kafka_port
        metrics_port = opts.metrics_port or metrics_port
        bootstrap = f"localhost:{kafka_port}"
        _say("fetching Apache Kafka (Maven Central) if needed")
        broker.fetch()
        _say(f"starting a local Kafka broker on {bootstrap}")
        broker.start(kafka_port, run_dir / "kafka", ctl_port)
        stack.callback(shutil.rmtree, run_dir, True)
        stack.callback(lambda: (_say("stopping the broker"), broker.stop(run_dir / "kafka")))
        create_topics(bootstrap, default_topics())
        model_path = _ensure_model(opts)

        log = run_dir / "worker.log"
        cmd = [
            sys.executable,
            "-m",
            "ecgwatch",
            "worker",
            "--registry",
            str(opts.registry),
            "--bootstrap",
            bootstrap,
            "--metrics-port",
            str(metrics_port),
            "--data-dir",
            str(run_dir / "worker"),
            "--batch-timeout",
            "0.05",
        ]
        _say(f"starting the worker (log: {log})")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log_fh = stack.enter_context(open(log, "wb"))
        worker = subprocess.Popen(
            cmd,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        stack.callback(lambda: (_say("stopping the worker"), _stop_process(worker)))
        metrics_url = f"http://localhost:{metrics_port}/metrics"
        _wait_http(
            f"http://localhost:{metrics_port}/readyz",
            time.monotonic() + opts.timeout_s,
            worker,
            log,
        )

        x, y = load_windows(opts.data, "test")
        truth = run_dir / "truth.csv"
        _say(
            f"replaying {len(x)} test windows as {opts.devices} devices "
            f"(+{len(BAD_MESSAGES)} malformed messages for the dead-letter topic)"
        )
        with progress_display("replay", "windows") as progress:
            stats = replay(
                x,
                bootstrap=bootstrap,
                devices=opts.devices,
                rate=opts.rate,
                labels=y,
                truth_path=truth,
                progress=progress,
            )
        _send_bad(bootstrap)
        summary = _collect(
            bootstrap, x, y, opts, model_path, stats.seconds, metrics_url, worker, log
        )
    for line in _format(summary):
        out(line)
    return summary


def _send_bad(bootstrap: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in BAD_MESSAGES:
        producer.send(DEFAULT_TOPICS.windows, key=b"dev-bad", value=value)
    producer.flush()
    producer.close()


def _collect(
    bootstrap: str,
    x: np.ndarray,
    y: np.ndarray,
    opts: DemoOptions,
    model_path: Path,
    replay_s: float,
    metrics_url: str,
    worker: subprocess.Popen[bytes],
    log: Path,
) -> dict[str, Any]:
    from detector import Artifact
    from pipeline.replay import device_of
    from pipeline.tail import read_records

    n = len(x)
    deadline = time.monotonic() + opts.timeout_s
    scores: dict[tuple[str, int], dict[str, Any]] = {}
    _say("waiting until every window is scored")
    topics = DEFAULT_TOPICS
    for rec in read_records(bootstrap, topics.scores, timeout_s=opts.timeout_s, idle_timeout_s=30):
        scores[(rec["device_id"], rec["seq"])] = rec
        if len(scores) >= n or time.monotonic() > deadline:
            break
    if worker.poll() is not None:
        raise EcgwatchError(f"the worker died during the demo; see {log}")
    dlq = list(
        read_records(
            bootstrap,
            topics.dlq,
            idle_timeout_s=3,
            timeout_s=30,
            max_records=len(BAD_MESSAGES),
        )
    )
    alerts = list(read_records(bootstrap, topics.alerts, idle_timeout_s=3, timeout_s=30))
    pred_normal = np.array(
        [not scores.get(device_of(i, opts.devices), {}).get("anomaly", True) for i in range(n)]
    )
    missing = sum(1 for i in range(n) if device_of(i, opts.devices) not in scores)
    meta = Artifact.verify(model_path)
    scored_at = [r["scored_at"] for r in scores.values()]
    span = max(scored_at) - min(scored_at) if len(scored_at) > 1 else 0.0
    return {
        "sent": n + len(BAD_MESSAGES),
        "valid_windows": n,
        "scored": len(scores),
        "missing": missing,
        "anomalies": sum(1 for r in scores.values() if r["anomaly"]),
        "alerts": len(alerts),
        "dead_lettered": len(dlq),
        "dlq_reasons": sorted({r["reason"] for r in dlq}),
        "streamed_accuracy": float(np.mean(pred_normal == (y == 1))),
        "offline_accuracy": float(meta["metrics"]["normal_positive"]["accuracy"]),
        "model_version": meta["model_version"],
        "replay_seconds": replay_s,
        "scoring_windows_per_s": len(scores) / span if span > 0 else float("nan"),
        "metrics_url": metrics_url,
    }


def _format(s: dict[str, Any]) -> list[str]:
    same = abs(s["streamed_accuracy"] - s["offline_accuracy"]) < 1e-12
    return [
        "",
        "ecgwatch demo — summary",
        f"  model               {s['model_version']}",
        f"  sent                {s['sent']} messages ({s['valid_windows']} valid windows)",
        f"  scored              {s['scored']} (missing: {s['missing']})",
        f"  anomalies           {s['anomalies']}",
        f"  alerts              {s['alerts']} (after per-device cooldown)",
        f"  dead-lettered       {s['dead_lettered']} ({', '.join(s['dlq_reasons'])})",
        f"  streamed accuracy   {s['streamed_accuracy']:.4f} (normal = positive)",
        f"  offline accuracy    {s['offline_accuracy']:.4f} "
        f"({'identical' if same else 'DIFFERENT'})",
        f"  throughput          {s['scoring_windows_per_s']:,.0f} windows/s scored "
        f"(replay took {s['replay_seconds']:.1f} s)",
        f"  metrics             {s['metrics_url']} (served while the demo ran)",
    ]
