"""``benchmarks.shadow_cost`` times every variant and reports medians and ratios to ``plain``."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.shadow_cost import bench_shadow_cost


def test_every_variant_is_timed(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = bench_shadow_cost(rounds=2, min_s=0.01, data=str(shared_data))
    assert list(res["median"]) == ["plain", "drift", "shadow seed", "shadow recommended"]
    assert all(len(v) == 2 and min(v) > 0 for v in res["rounds"].values())
    assert res["ratio"]["plain"] == pytest.approx(1.0)
    assert capsys.readouterr().out.count("round ") == 2
