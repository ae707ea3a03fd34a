"""The metric-name extractor finds what the contract checks rely on, and nothing else."""

from __future__ import annotations

import pytest

from tests.unit.deploy.promql_names import Selector, metric_names, selectors


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", {"up"}),
        ('up{job="w"} == 0', {"up"}),
        ("rate(ecg_windows_total[5m])", {"ecg_windows_total"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(ecg_x_bucket[$__rate_interval])))",
            {"ecg_x_bucket"},
        ),
        ("sum without (instance) (a) / on() group_left(topic) b", {"a", "b"}),
        ("avg_over_time(ecg:ratio:rate5m[1d:5m] offset 1h) > 0.5", {"ecg:ratio:rate5m"}),
        ('label_replace(a, "dst", "$1", "src", "(.*)") and bool b', {"a", "b"}),
        ("sum(a) by (le) * 1e3 - 2.5", {"a"}),
        ('absent(up{job="w"}) unless vector(1)', {"up"}),
        ('max(a{instance=~"$instance"}) or ON(x) c', {"a", "c"}),
    ],
)
def test_metric_names(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_selectors_read_matchers_and_unquote() -> None:
    got = selectors('rate(a{outcome="scored", reason!~"x|y"}[5m]) + {job=\'j\'}')
    assert got == [
        Selector("a", (("outcome", "=", "scored"), ("reason", "!~", "x|y"))),
        Selector("", (("job", "=", "j"),)),
    ]


def test_selectors_reject_unreadable_matchers() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        selectors("a{outcome scored}")
