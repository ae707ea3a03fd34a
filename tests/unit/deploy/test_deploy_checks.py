"""The contract check rejects what it must (so the rule and dashboard tests can fail)."""

from __future__ import annotations

from tests.unit.deploy.checks import contract_problems, markdown_anchors


def test_contract_accepts_contract_series() -> None:
    expr = (
        'sum(rate(ecg_windows_total{outcome="scored"}[5m])) / '
        "histogram_quantile(0.9, sum by (le) "
        '(rate(ecg_scoring_duration_seconds_bucket{le="1"}[5m])))'
        ' and up{job="ecgwatch-worker"} and ecg:x:rate5m{reason="empty"}'
    )
    assert contract_problems(expr, recorded={"ecg:x:rate5m"}) == []


def test_contract_rejects_unknown_names_labels_and_values() -> None:
    problems = contract_problems(
        'rate(ecg_window_total[5m]) + ecg_windows_total{result="scored"}'
        ' + ecg_windows_total{outcome="anomalous"} + ecg_model_loaded{le="1"}'
        ' + ecg:undefined:rate5m + {__name__="up"}'
    )
    assert problems == [
        "unknown metric 'ecg:undefined:rate5m'",
        "unknown metric 'ecg_window_total'",
        "ecg_windows_total has no label 'result'",
        "ecg_windows_total{outcome} never has value 'anomalous'",
        "ecg_model_loaded has no label 'le'",
        "selector without a metric name: Selector(name='', matchers=(('__name__', '=', 'up'),))",
    ]


def test_markdown_anchors_follow_github_slugs() -> None:
    text = "# Operating ecgwatch\n## Rolling out a new model version\n### EcgWorkerDown\n"
    assert markdown_anchors(text) == {
        "operating-ecgwatch",
        "rolling-out-a-new-model-version",
        "ecgworkerdown",
    }
