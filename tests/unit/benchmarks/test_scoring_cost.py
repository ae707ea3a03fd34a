"""``benchmarks.scoring_cost`` runs every variant and reports medians and ratios to ``seed``."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scoring_cost import bench_scoring_cost, main


def test_every_variant_at_every_batch_size(shared_data: Path) -> None:
    lines: list[str] = []
    res = bench_scoring_cost(rounds=2, min_s=0.01, data=str(shared_data), log=lines.append)
    assert list(res["median"]) == [
        "seed",
        "plain",
        "smoothed",
        "discounted",
        "z-normalised",
        "aligned",
        "gated",
        "length search",
        "length search, every window",
    ]
    assert len(lines) == 2
    for name, by_batch in res["rounds"].items():
        assert list(by_batch) == ["1", "32", "256", "4096"]
        assert all(len(v) == 2 and min(v) > 0 for v in by_batch.values()), name
    assert res["ratio"]["seed"] == {b: pytest.approx(1.0) for b in ["1", "32", "256", "4096"]}


def test_command_line_prints_the_table(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--rounds", "1", "--min-s", "0.01", "--data", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert (
        "| batch | seed | plain | smoothed | discounted | z-normalised | aligned | gated | "
        "length search | length search, every window |"
    ) in out
    assert "| 4096 |" in out
