"""Shared helpers of the deploy tests: paths, loaders, the contract check of a PromQL
expression, and the check of an ``ecgwatch`` argument list against the real CLI parser."""

from __future__ import annotations

import argparse
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.metric_contract import (
    EVERY_METRIC,
    SCRAPE_LABELS,
    allowed_labels,
    base_metric,
    series_names,
)
from tests.unit.deploy.promql_names import metric_names, selectors

__all__ = [
    "DEPLOY",
    "DOCS_OPERATIONS",
    "INGEST_JOB",
    "JOB",
    "PROM",
    "ROOT",
    "contract_problems",
    "load_yaml",
    "load_yaml_all",
    "markdown_anchors",
    "parse_ecgwatch_args",
    "promtool",
    "recorded_names",
]

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
DOCS_OPERATIONS = ROOT / "docs" / "operations.md"
#: The scrape job every deployment gives the workers; the alerts match on it.
JOB = "ecgwatch-worker"
#: The beat-extraction stage's scrape job.
INGEST_JOB = "ecgwatch-ingest"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def promtool() -> str:
    """Path of promtool, or skip: Debian's `prometheus` package provides it (./run setup)."""
    found = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").is_file() else None
    )
    if found is None:
        pytest.skip("promtool not installed (apt-get install prometheus; ./run setup does it)")
    return found


def recorded_names() -> set[str]:
    """Names defined by ``record:`` in the recording rules."""
    doc = load_yaml(PROM / "rules" / "recording.yml")
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def contract_problems(expr: str, recorded: Iterable[str] = ()) -> list[str]:
    """Why ``expr`` uses something a worker does not export (empty when it is all in contract).

    Checks metric names, label names of matchers, and equality-matched values of closed labels
    (``outcome``, ``reason``, ``severity``). Recording-rule names may carry any contract label.
    """
    recorded = set(recorded)
    known = series_names() | recorded
    any_label = set(SCRAPE_LABELS).union(*(m.labels for m in EVERY_METRIC.values()))
    problems = [f"unknown metric {n!r}" for n in sorted(metric_names(expr) - known)]
    for sel in selectors(expr):
        if not sel.name:
            problems.append(f"selector without a metric name: {sel}")
            continue
        labels = any_label if sel.name in recorded else allowed_labels(sel.name)
        metric = base_metric(sel.name)
        for label, op, value in sel.matchers:
            if label not in labels:
                problems.append(f"{sel.name} has no label {label!r}")
            elif (
                op == "=" and metric is not None and value not in metric.values.get(label, {value})
            ):
                problems.append(f"{sel.name}{{{label}}} never has value {value!r}")
    return problems


def markdown_anchors(text: str) -> set[str]:
    """GitHub-style anchors of the headings in ``text`` (lower case, punctuation dropped)."""
    anchors = set()
    for line in text.splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def parse_ecgwatch_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` with the real ``ecgwatch`` parser; an unknown subcommand fails the test."""
    from ecgwatch.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if argv[0] not in sub.choices:
        raise AssertionError(f"`ecgwatch {argv[0]}` is no ecgwatch command ({list(argv)})")
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse reports and exits on a bad option
        raise AssertionError(f"ecgwatch rejects {list(argv)}") from exc
