"""Every query of every Grafana dashboard returns data while a real worker is scraped.

A real worker scores windows from the session broker, and a real beat-extraction stage
(``ecgwatch ingest``) cuts a stitched continuous signal, while Debian's Prometheus scrapes both
(the harness of ``test_prometheus_live``); then each panel target's ``expr`` of each dashboard
JSON in ``deploy/grafana/dashboards/`` is run as an instant query, with Grafana's template
variables substituted. A query passes when it returns at least one series with a number (not
NaN). Queries that are empty by design are listed in :data:`EMPTY_BY_DESIGN`, each with why.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.replay import replay
from pipeline.samples_replay import replay_signals
from pipeline.settings import TopicNames
from tests.integration.conftest import SeedModel
from tests.integration.prometheus_server import PrometheusServer, running_prometheus
from tests.integration.stream import REPO, IngestProcess, WorkerPool, new_topics
from training.continuous import stitch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
N_WINDOWS = 400
#: Beats stitched into each ingest device's signal, and the devices.
N_BEATS, INGEST_DEVICES = 40, 2

#: Grafana's variables, as the test substitutes them. ``$__rate_interval`` is at least four
#: scrape intervals in Grafana; here it must also reach back over the whole replay, which
#: happened seconds to a minute before the queries run.
SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "5m",
    "$__range": "5m",
}

#: (dashboard file name, expr) pairs that are allowed to return nothing, and why. Empty
#: today: the worker pre-creates every labelled series at zero, the replayed test-split beats
#: include anomalies (so alerts fire), and the quantile panels have observations.
EMPTY_BY_DESIGN: dict[tuple[str, str], str] = {}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # rows nest their panels


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every target of every panel."""
    out = []
    for path in DASHBOARDS:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(doc.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((path.name, str(panel.get("title")), str(target["expr"])))
    return out


def substitute(expr: str) -> str:
    """``expr`` with Grafana's variables replaced; fails on a variable it does not know."""
    for name, value in SUBSTITUTIONS.items():
        expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
    left = re.findall(r"\$\{?\w+\}?", expr)
    assert not left, f"no substitution for {left} in {expr!r}: add one to SUBSTITUTIONS"
    return expr


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(r["value"][1])) for r in result)


def test_substitute_knows_every_variable_in_the_dashboards() -> None:
    queries = dashboard_queries()
    assert queries, "no dashboard queries found"
    for _file, _title, expr in queries:
        substitute(expr)
    assert substitute("rate(x[${__rate_interval}])") == "rate(x[5m])"


def send_continuous(bootstrap: str, topics: TopicNames, beats: np.ndarray) -> int:
    """Stitch ``beats`` into one 250 Hz signal per device and send it as ``ecg.samples``
    chunks (0.25 s each); return how many chunks were sent."""
    signals = {
        f"dash-{d}": stitch(beats, np.ones(len(beats)), seed=d).signal
        for d in range(INGEST_DEVICES)
    }
    return replay_signals(signals, 250.0, bootstrap=bootstrap, topic=topics.samples).sent


def test_every_dashboard_query_returns_data(
    worker_pool: WorkerPool,
    kafka_bootstrap: str,
    ecg_arrays: tuple,
    tmp_path: Path,
    seed_model: SeedModel,
) -> None:
    queries = dashboard_queries()
    stale = [k for k in EMPTY_BY_DESIGN if k not in {(f, e) for f, _t, e in queries}]
    assert not stale, f"EMPTY_BY_DESIGN names queries no dashboard has: {stale}"
    topics = new_topics(kafka_bootstrap, "dash")
    # The stage's own topics: its beat windows are not scored here (the worker's counts stay
    # those of the replayed windows); only its metrics matter.
    stage_topics = new_topics(kafka_bootstrap, "dash-ingest", samples=True)
    # A shadow model (the served version itself: agreement 1) so the shadow panel has data.
    worker = worker_pool.start(topics, env={"ECGWATCH_WORKER__SHADOW_MODEL": seed_model.version})
    stage = IngestProcess(seed_model.registry, kafka_bootstrap, stage_topics, tmp_path / "ingest")
    try:
        stage.start().wait_ready()
        targets = [f"127.0.0.1:{worker.metrics_port}"]
        stage_targets = [f"127.0.0.1:{stage.metrics_port}"]
        with running_prometheus(targets, tmp_path, ingest_targets=stage_targets) as prom:
            _query_every_panel(prom, queries, kafka_bootstrap, topics, stage_topics, ecg_arrays)
    finally:
        stage.stop()


def _query_every_panel(
    prom: PrometheusServer,
    queries: list[tuple[str, str, str]],
    bootstrap: str,
    topics: TopicNames,
    stage_topics: TopicNames,
    ecg_arrays: tuple,
) -> None:
    """Send the inputs, wait for both to be counted, then run every panel query."""
    # rate() sees an increase only between two scrapes: have one sample of the counters
    # at zero before the first window or chunk is sent.
    prom.wait_for(
        lambda: (
            prom.scalar("sum(ecg_windows_total)") == 0
            and prom.scalar("sum(ecg_ingest_chunks_total)") == 0
        ),
        timeout=30,
        what="a first scrape of the idle worker and stage",
    )
    x, y = ecg_arrays
    replay(x[:N_WINDOWS], bootstrap=bootstrap, topic=topics.windows, devices=5, progress=None)
    chunks = send_continuous(bootstrap, stage_topics, x[y == 1][:N_BEATS])
    prom.wait_for(
        lambda: prom.scalar("sum(ecg_windows_total)") == N_WINDOWS,
        timeout=90,
        what=f"ecg_windows_total == {N_WINDOWS}",
    )
    prom.wait_for(
        lambda: (
            prom.scalar("sum(ecg_ingest_chunks_total)") == chunks
            and (prom.scalar("sum(ecg_ingest_beats_total)") or 0) > 0
        ),
        timeout=90,
        what=f"ecg_ingest_chunks_total == {chunks} and some beats",
    )
    time.sleep(3)  # a few more scrapes: rate() needs two samples after the last change
    empty = []
    deadline = time.monotonic() + 20  # for all queries together
    for file, title, expr in queries:
        query = substitute(expr)
        while not (ok := _has_data(prom.query(query))) and time.monotonic() < deadline:
            time.sleep(0.5)
        if ok and (file, expr) in EMPTY_BY_DESIGN:
            empty.append(f"{file} / {title}: returns data now; drop it from EMPTY_BY_DESIGN")
        elif not ok and (file, expr) not in EMPTY_BY_DESIGN:
            empty.append(f"{file} / {title}: {query} -> {prom.query(query)}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
