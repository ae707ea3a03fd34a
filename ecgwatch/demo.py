"""The end-to-end demo: broker → topics → model → worker → replay → summary → clean shutdown.

Everything it starts it also stops, in reverse order, also on Ctrl-C. The broker runs in a
fresh data folder per demo so the counts in the summary are exactly this run's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
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


@dataclass
class _Stack:
    """What one demo run started: the broker's address, the worker and where things live."""

    run_dir: Path
    bootstrap: str
    metrics_port: int
    worker: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def metrics_url(self) -> str:
        """The worker's Prometheus endpoint."""
        return f"http://localhost:{self.metrics_port}/metrics"


def run_demo(opts: DemoOptions, out: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo and return the summary (also printed).

    Parameters
    ----------
    opts : DemoOptions
        Registry, preset, data source, devices, ports and time limits.
    out : callable
        Where the summary lines go.

    Returns
    -------
    dict
        The summary: counts sent, scored, missing, dead-lettered, accuracies, throughput.
    """
    opts.workdir.mkdir(parents=True, exist_ok=True)
    run_dir = opts.workdir / time.strftime("run-%Y%m%dT%H%M%S")
    with ExitStack() as stack:
        run = _start_broker(stack, opts, run_dir)
        model_path = _ensure_model(opts)
        _start_worker(stack, opts, run)
        x, y, replay_s = _replay_test_beats(opts, run)
        summary = _collect(run, x, y, opts, model_path, replay_s)
    for line in _format(summary):
        out(line)
    return summary


def _start_broker(stack: ExitStack, opts: DemoOptions, run_dir: Path) -> _Stack:
    """A fresh broker in ``run_dir`` with the default topics; stopped and removed on exit."""
    from ecgwatch import broker
    from pipeline.topics import create_topics, default_topics

    kafka_port, ctl_port, metrics_port = broker.free_ports(3)
    run = _Stack(
        run_dir,
        f"localhost:{opts.port or kafka_port}",
        opts.metrics_port or metrics_port,
    )
    _say("fetching Apache Kafka (Maven Central) if needed")
    broker.fetch()
    _say(f"starting a local Kafka broker on {run.bootstrap}")
    broker.start(opts.port or kafka_port, run_dir / "kafka", ctl_port)
    stack.callback(shutil.rmtree, run_dir, True)
    stack.callback(lambda: (_say("stopping the broker"), broker.stop(run_dir / "kafka")))
    create_topics(run.bootstrap, default_topics())
    return run


def _start_worker(stack: ExitStack, opts: DemoOptions, run: _Stack) -> None:
    """Start ``ecgwatch worker`` as a child process and wait until it is ready."""
    from ecgwatch.cli_common import worker_argv

    # Beside the run folder, not in it: the run folder goes at exit, and the log is what a
    # user reads when the demo failed (each demo overwrites it).
    run.log = log = run.run_dir.parent / "worker.log"
    cmd = worker_argv(opts.registry, run.bootstrap, run.metrics_port, run.run_dir / "worker")
    _say(f"starting the worker (log: {log}, kept after the demo)")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log_fh = stack.enter_context(open(log, "wb"))  # noqa: SIM115 (closed by the caller's stack)
    run.worker = worker = subprocess.Popen(
        cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    stack.callback(lambda: (_say("stopping the worker"), _stop_process(worker)))
    deadline = time.monotonic() + opts.timeout_s
    _wait_http(f"http://localhost:{run.metrics_port}/readyz", deadline, worker, log)


def _replay_test_beats(opts: DemoOptions, run: _Stack) -> tuple[np.ndarray, np.ndarray, float]:
    """Replay the test split (and the malformed messages); the beats, labels and seconds."""
    from ecgwatch.cli_common import load_windows, progress_display
    from pipeline.replay import replay

    x, y = load_windows(opts.data, "test")
    _say(
        f"replaying {len(x)} test windows as {opts.devices} devices "
        f"(+{len(BAD_MESSAGES)} malformed messages for the dead-letter topic)"
    )
    with progress_display("replay", "windows") as progress:
        stats = replay(
            x,
            bootstrap=run.bootstrap,
            devices=opts.devices,
            rate=opts.rate,
            labels=y,
            truth_path=run.run_dir / "truth.csv",
            progress=progress,
        )
    _send_bad(run.bootstrap)
    return x, y, stats.seconds


def _send_bad(bootstrap: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in BAD_MESSAGES:
        producer.send(DEFAULT_TOPICS.windows, key=b"dev-bad", value=value)
    producer.flush()
    producer.close()


def _collect(
    run: _Stack,
    x: np.ndarray,
    y: np.ndarray,
    opts: DemoOptions,
    model_path: Path,
    replay_s: float,
) -> dict[str, Any]:
    """Read the output topics back and summarise what the worker did with the replay."""
    scores, dlq, alerts = _read_outputs(run, len(x), opts.timeout_s)
    return _summarise(scores, dlq, alerts, x, y, opts.devices, model_path, replay_s) | {
        "metrics_url": run.metrics_url
    }


def _read_outputs(
    run: _Stack, n: int, timeout_s: float
) -> tuple[dict[tuple[str, int], dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Score records by (device, seq) until all ``n`` arrived, then dead letters and alerts."""
    from pipeline.tail import read_records

    deadline = time.monotonic() + timeout_s
    scores: dict[tuple[str, int], dict[str, Any]] = {}
    _say("waiting until every window is scored")
    topics = DEFAULT_TOPICS
    for rec in read_records(run.bootstrap, topics.scores, timeout_s=timeout_s, idle_timeout_s=30):
        scores[(rec["device_id"], rec["seq"])] = rec
        if len(scores) >= n or time.monotonic() > deadline:
            break
    assert run.worker is not None
    if run.worker.poll() is not None:
        raise EcgwatchError(f"the worker died during the demo; see {run.log}")
    dlq = list(
        read_records(
            run.bootstrap,
            topics.dlq,
            idle_timeout_s=3,
            timeout_s=30,
            max_records=len(BAD_MESSAGES),
        )
    )
    alerts = list(read_records(run.bootstrap, topics.alerts, idle_timeout_s=3, timeout_s=30))
    return scores, dlq, alerts


def _summarise(
    scores: dict[tuple[str, int], dict[str, Any]],
    dlq: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    x: np.ndarray,
    y: np.ndarray,
    devices: int,
    model_path: Path,
    replay_s: float,
) -> dict[str, Any]:
    from detector import Artifact
    from pipeline.replay import device_of

    n = len(x)
    keys = [device_of(i, devices) for i in range(n)]
    pred_normal = np.array([not scores.get(k, {}).get("anomaly", True) for k in keys])
    meta = Artifact.verify(model_path)
    scored_at = [r["scored_at"] for r in scores.values()]
    span = max(scored_at) - min(scored_at) if len(scored_at) > 1 else 0.0
    return {
        "sent": n + len(BAD_MESSAGES),
        "valid_windows": n,
        "scored": len(scores),
        "missing": sum(1 for k in keys if k not in scores),
        "anomalies": sum(1 for r in scores.values() if r["anomaly"]),
        "alerts": sum(1 for a in alerts if a.get("kind") != "technical"),
        # The replay's devices all go silent when it ends: stale-feed starts may follow.
        "technical_alerts": sum(1 for a in alerts if a.get("kind") == "technical"),
        "dead_lettered": len(dlq),
        "dlq_reasons": sorted({r["reason"] for r in dlq}),
        "streamed_accuracy": float(np.mean(pred_normal == (y == 1))),
        "offline_accuracy": float(meta["metrics"]["normal_positive"]["accuracy"]),
        "model_version": meta["model_version"],
        "replay_seconds": replay_s,
        "scoring_windows_per_s": len(scores) / span if span > 0 else float("nan"),
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
        f"  alerts              {s['alerts']} (episode records: start, update, end per device)"
        f"; {s['technical_alerts']} feed_stale",
        f"  dead-lettered       {s['dead_lettered']} ({', '.join(s['dlq_reasons'])})",
        f"  streamed accuracy   {s['streamed_accuracy']:.4f} (normal = positive)",
        f"  offline accuracy    {s['offline_accuracy']:.4f} "
        f"({'identical' if same else 'DIFFERENT'})",
        f"  throughput          {s['scoring_windows_per_s']:,.0f} windows/s scored "
        f"(replay took {s['replay_seconds']:.1f} s)",
        f"  metrics             {s['metrics_url']} (served while the demo ran)",
    ]
