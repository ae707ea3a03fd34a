"""``ecgwatch compare --quick``: the comparison runs end to end in CI-friendly time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.models import MODEL_KINDS


def test_compare_quick_writes_table_and_roc(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecgwatch.cli import main
    from training.compare import candidates

    out = tmp_path / "docs" / "model-quality.md"
    rc = main(["compare", "--quick", "--data", str(shared_data), "--out", str(out)])
    assert rc == 0
    # Progress over the runs (one seed, no other split in --quick): plain lines off a terminal.
    n = len(candidates(quick=True))
    assert f"[compare] {n}/{n} runs (100%)" in capsys.readouterr().err
    text = out.read_text()
    assert "Quick run" in text
    for name in ("seed", "recommended", *(k for k in MODEL_KINDS if k != "dense")):
        assert f"| {name} |" in text, name
    for policy in ("mean_std k=1", "quantile q=0.98", "best_f1 (labelled validation)"):
        assert policy in text
    png = out.with_name("model-quality-roc.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "model-quality-roc.png" in text
    # The robustness table: every config at every perturbation level, and its plot.
    from training.robustness import LEVELS

    assert "## Robustness: perturbed test beats" in text
    for name in ("seed", "recommended", "conv1d", "lstm", "vae"):
        for level in LEVELS:
            assert f"| {name} | {level.family} | {level.label} |" in text, (name, level.label)
    assert "Robustness target (`recommended`" in text
    assert out.with_name("model-quality-robustness.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_rejects_unknown_kind(tmp_path: Path) -> None:
    from ecgwatch.cli import main

    assert main(["compare", "--quick", "--kinds", "nope", "--out", str(tmp_path / "x.md")]) == 2


def test_aggregate_mean_and_std() -> None:
    from training.compare import RunResult
    from training.compare_report import aggregate

    runs = [
        RunResult(
            "a",
            "dense",
            s,
            21,
            1.0 + s,
            2.0,
            0.1,
            0.9,
            0.9 + s / 100,
            0.8,
            {"p": {"accuracy": 0.5 + s / 10, "precision": 1, "recall": 1, "f1": 1}},
        )
        for s in (0, 2)
    ]
    agg = aggregate(runs)["a"]
    assert agg["train_seconds"] == (2.0, 1.0)
    assert agg["p|accuracy"] == pytest.approx((0.6, 0.1))
    assert agg["roc_auc"][0] == pytest.approx(0.91)


def test_best_f1_is_not_a_label_free_policy() -> None:
    from detector import DetectorConfigError, fit_threshold
    from detector.threshold import POLICIES, fit_best_f1_threshold

    assert "best_f1" not in POLICIES
    with pytest.raises(DetectorConfigError):
        fit_threshold("best_f1", np.ones(3))
    t = fit_best_f1_threshold(np.array([0.1, 0.2, 0.9, 1.0]), np.array([1, 1, 0, 0]))
    assert 0.2 < t.value < 0.9 and t.params["validation_f1"] == 1.0
    with pytest.raises(DetectorConfigError, match="one class"):
        fit_best_f1_threshold(np.array([0.1, 0.2]), np.array([1, 1]))


def _shipped_row() -> str:
    from training import load_config
    from training.compare import THRESHOLDS

    q = load_config("recommended").threshold.q
    return next(t[0] for t in THRESHOLDS if t[1] == "quantile" and t[2] == {"q": q})


def _run(name: str, seed: int, f1: float, roc_auc: float, seconds: float = 40.0) -> Any:
    from training.compare import THRESHOLDS, RunResult

    # Only the shipped row is good; every other policy scores 0.
    zero = {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    metrics = {t[0]: dict(zero) for t in THRESHOLDS}
    metrics[_shipped_row()] = {k: f1 for k in zero}
    return RunResult(name, "dense", seed, 21, seconds, 5.0, 0.01, 0.99, roc_auc, 0.99, metrics)


def test_target_section_checks_the_shipped_threshold_row_mean(tmp_path: Path) -> None:
    from training.compare import CompareResult
    from training.compare_report import write_markdown

    # Only the preset's own threshold row is judged; the others (F1 0) must not be.
    runs = [_run("recommended", 0, 0.990, 0.997), _run("recommended", 1, 0.981, 0.997)]
    runs.append(_run("other", 0, 0.5, 0.5))
    text = write_markdown(CompareResult({"seeds": runs, "splits": []}), tmp_path / "m.md")
    body = text.read_text()
    assert f"threshold {_shipped_row()}" in body
    assert "| **mean** | 0.9855 | 0.9855 | 0.9970 | 40.0 |" in body
    assert "Target: accuracy met, f1 met, roc_auc met, train_seconds met." in body
    runs[1] = _run("recommended", 1, 0.979, 0.997, seconds=130.0)
    body = write_markdown(CompareResult({"seeds": runs, "splits": []}), tmp_path / "m.md")
    assert "f1 NOT met" in body.read_text() and "train_seconds met" in body.read_text()


def test_scoring_only_variants_reuse_the_fit(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.compare as cmp
    from training import load_dataset

    configs = [c for c in cmp.candidates(quick=True) if c.name.startswith("recommended")]
    scoring = [
        (
            c.model.score_smoothing,
            c.model.noise_discount,
            c.model.align.enabled,
            c.model.align.gate.enabled,
            c.model.length_search.enabled,
        )
        for c in configs
    ]
    assert scoring == [
        (2.0, 1.5, True, True, False),
        (2.0, 1.5, True, False, False),
        (2.0, 1.5, False, False, False),
        (2.0, 1.5, True, True, True),
        (2.0, 0.0, True, True, False),
        (0.0, 0.0, True, True, False),
    ]
    fits = []
    real_fit = cmp.fit_detector

    def counting_fit(*args, **kwargs):  # type: ignore[no-untyped-def]
        fits.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(cmp, "fit_detector", counting_fit)
    result = cmp.compare(load_dataset(shared_data), configs, seeds=(0,), split_states=())
    discounted, ungated, unaligned, searched, smoothed, plain = result.runs["seeds"]
    assert len(fits) == 1  # one fit, six ways of scoring it
    assert ungated.train_seconds == discounted.train_seconds
    assert discounted.train_seconds == smoothed.train_seconds == plain.train_seconds
    assert unaligned.train_seconds == searched.train_seconds == discounted.train_seconds
    # Alignment changes scores (so the robustness rows differ), not the fitted weights.
    assert unaligned.robustness["shift|+5 samples"] != discounted.robustness["shift|+5 samples"]
    assert discounted.holdout_mae < smoothed.holdout_mae  # each score is divided by >= 1
    assert smoothed.holdout_mae < plain.holdout_mae  # the low-pass removes residual noise


def _synthetic_result() -> Any:
    from training.compare import CompareResult

    runs = [_run("recommended", 0, 0.990, 0.997), _run("recommended", 1, 0.981, 0.997)]
    return CompareResult({"seeds": runs, "splits": []}, source="synthetic")


def test_compare_reports_progress_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import training.compare as cmp

    def fake_run_once(data: Any, config: Any, **_kw: Any) -> Any:
        return _run(config.name, config.seed, 0.9, 0.9)

    monkeypatch.setattr(cmp, "run_once", fake_run_once)
    configs = cmp.candidates(quick=True)[:3]
    calls: list[tuple[int, int]] = []
    result = cmp.compare(
        types.SimpleNamespace(source="x"),  # type: ignore[arg-type]
        configs,
        seeds=(0, 1),
        split_states=(7,),
        progress=lambda done, total: calls.append((done, total)),
    )
    runs = len(result.runs["seeds"]) + len(result.runs["splits"])
    assert runs == 3 * (2 + 1)
    assert calls == [(i, runs) for i in range(1, runs + 1)]


@pytest.mark.parametrize("docstring", ["Summary.\n\nONLY IN THE DOCSTRING.", None])
def test_report_prose_is_not_the_module_docstring(
    docstring: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import training.compare as cmp
    from training.compare_report import write_markdown

    monkeypatch.setattr(cmp, "__doc__", docstring)  # None: as under python -OO
    body = write_markdown(_synthetic_result(), tmp_path / "m.md").read_text()
    assert "ONLY IN THE DOCSTRING" not in body
    assert "Protocol (the seed's): all beats merged" in body
    assert "60 epochs of batch 64, `lstm` 30 epochs" in body
    assert "2 seeds on the seed's split (`random_state = 21`); no other split." in body


def test_preset_history_survives_regeneration(tmp_path: Path) -> None:
    from training.compare_report import hand_written_sections, write_markdown

    repo = Path(__file__).resolve().parents[3]
    shipped = repo / "docs" / "model-quality.md"
    kept = hand_written_sections(shipped)
    assert len(kept) == 1 and "\n## How the recommended preset was chosen\n" in kept[0]
    assert "| dense [128, 64, 16] | 0.9936 ± 0.0018 |" in kept[0]  # a figure of the history
    out = tmp_path / "model-quality.md"
    out.write_text(shipped.read_text())
    body = write_markdown(_synthetic_result(), out).read_text()
    assert "on synthetic" in body and "| **mean** | 0.9855 |" in body  # regenerated
    assert body.endswith(kept[0] + "\n") and body.count(kept[0]) == 1
    assert "except its hand-written sections" in body
    # Regenerating the regenerated file changes nothing.
    assert write_markdown(_synthetic_result(), out).read_text() == body


def test_preset_comments_link_to_the_history() -> None:
    repo = Path(__file__).resolve().parents[3]
    preset = (repo / "training" / "presets" / "recommended.yaml").read_text()
    assert "docs/model-quality.md#how-the-recommended-preset-was-chosen" in preset
    # The history is in the doc; the preset keeps short comments, no selection tables.
    assert "±" not in preset and "<- chosen" not in preset


def test_unclosed_hand_written_section_stops_compare_before_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecgwatch.cli import main
    from training.compare_report import hand_written_sections
    from training.errors import TrainingError

    out = tmp_path / "m.md"
    out.write_text("# old\n\n<!-- hand-written: notes -->\n## Notes\n")
    with pytest.raises(TrainingError, match="'notes' has no"):
        hand_written_sections(out)
    # --data names no data set: the section check fails first, before any data is read.
    assert main(["compare", "--quick", "--data", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "hand-written section 'notes'" in capsys.readouterr().err
    assert out.read_text().startswith("# old")
