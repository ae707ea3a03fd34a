"""docs/operations.md documents every metric of the contract, with its type, and covers scaling
and model roll-out."""

from __future__ import annotations

import re

from tests.unit.deploy.checks import DOCS_OPERATIONS, markdown_anchors
from tests.unit.deploy.metric_contract import EVERY_METRIC, REJECT_REASONS


def _metric_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOCS_OPERATIONS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`(ecg_\w+)`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_every_contract_metric_is_documented_with_its_type_and_labels() -> None:
    rows = _metric_rows()
    assert set(rows) == set(EVERY_METRIC)
    for name, metric in EVERY_METRIC.items():
        kind, labels = rows[name][0], rows[name][1]
        assert kind == metric.type, name
        for label in metric.labels:
            assert f"`{label}`" in labels, (name, label)


def test_every_reject_reason_is_documented() -> None:
    text = DOCS_OPERATIONS.read_text(encoding="utf-8")
    assert {r for r in REJECT_REASONS if f"`{r}`" not in text} == set()


def test_scaling_and_rollout_sections_exist() -> None:
    anchors = markdown_anchors(DOCS_OPERATIONS.read_text(encoding="utf-8"))
    assert {"metrics", "scaling-workers", "rolling-out-a-new-model-version"} <= anchors
