"""Model-quality comparison: every model kind × threshold policy, over seeds and splits.

:func:`candidates` lists the configs compared (the ``seed`` and ``recommended`` presets, the
recommended model scored without each of its scoring steps, and the other kinds),
:func:`run_once` fits one config on one split and measures it under every policy of
:data:`THRESHOLDS` (test metrics, validation ROC-AUC on labelled beats of the training split,
and optionally the perturbed test beats of :mod:`training.robustness`), and :func:`compare`
repeats that over seeds and splits. :mod:`training.compare_report` writes the result as
``docs/model-quality.md``; the protocol it prints for readers is defined there
(:data:`training.compare_report.PROTOCOL`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn import metrics as skm

from detector import AutoencoderDetector, fit_threshold
from detector.models import default_params
from detector.threshold import fit_best_f1_threshold
from training.config import TrainConfig, config_from_dict, load_config
from training.data import Dataset
from training.evaluate import detection_metrics
from training.job import fit_detector
from training.robustness import measure
from training.split import Split, make_split

__all__ = [
    "KIND_EPOCHS",
    "KIND_TRAINING",
    "OTHER_KINDS",
    "THRESHOLDS",
    "CompareResult",
    "RunResult",
    "candidates",
    "compare",
    "run_once",
]

#: (name, policy, params, calibration beats). ``best_f1`` is the labelled one (validation).
THRESHOLDS: tuple[tuple[str, str, dict[str, float], str], ...] = (
    ("mean_std k=1 (train)", "mean_std", {"k": 1.0}, "fit"),
    ("quantile q=0.98 (holdout)", "quantile", {"q": 0.98}, "holdout"),
    ("quantile q=0.99 (holdout)", "quantile", {"q": 0.99}, "holdout"),
    ("best_f1 (labelled validation)", "best_f1", {}, "validation"),
)
LABEL_FREE = tuple(t[0] for t in THRESHOLDS if t[1] != "best_f1")

#: The other kinds in the comparison, each with its registered default architecture
#: (``detector.models.default_params``).
OTHER_KINDS: tuple[str, ...] = ("conv1d", "lstm", "vae")
#: Training budget of those kinds: 60 epochs of batch 64 (~2,200 optimiser steps, 10x the
#: seed's), with the recommended preset's hold-out. The comparison runs 10 fits of every
#: row on a shared 2-core machine, so the other kinds get a smaller budget than the
#: recommended preset; the seed and recommended rows run exactly as their presets.
KIND_TRAINING: dict[str, Any] = {"epochs": 60, "batch_size": 64}
#: Epochs that differ from :data:`KIND_TRAINING`'s: recurrent steps are sequential (~4x a
#: conv1d epoch on CPU), so ``lstm`` gets half.
KIND_EPOCHS: dict[str, int] = {"lstm": KIND_TRAINING["epochs"] // 2}


def candidates(quick: bool = False) -> list[TrainConfig]:
    """The configs compared: the ``seed`` and ``recommended`` presets, then one per other kind.

    ``quick`` cuts every config to 2 epochs (a CI smoke run: the numbers are not
    meaningful, the pipeline is).
    """
    rec = load_config("recommended")
    base = rec.to_dict()
    # The recommended model scored without the noise discount, and by the plain MAE: what
    # each scoring step adds on the same weights.
    smoothed = {**base, "name": "recommended, no noise discount"}
    smoothed["model"] = {**base["model"], "noise_discount": 0.0}
    plain = {**base, "name": "recommended, plain MAE"}
    plain["model"] = {**base["model"], "score_smoothing": 0.0, "noise_discount": 0.0}
    unaligned = {**base, "name": "recommended, no alignment"}
    unaligned["model"] = {**base["model"], "align": {}}
    # The alignment as shipped before the gate (detector.gate): every window aligned.
    ungated = {**base, "name": "recommended, ungated alignment"}
    ungated["model"] = {**base["model"], "align": {**base["model"]["align"], "gate": {}}}
    # The same weights scored with the length search (detector.length): what it buys under
    # a misjudged beat length and what it costs elsewhere.
    searched = {**base, "name": "recommended, length search"}
    searched["model"] = {**base["model"], "length_search": {"max_error": 0.1}}
    out = [load_config("seed"), rec]
    out += [config_from_dict(d) for d in (ungated, unaligned, searched, smoothed, plain)]
    for kind in OTHER_KINDS:
        d = {**base, "name": kind, "description": f"{kind} autoencoder"}
        d["model"] = {
            "kind": kind,
            "params": default_params(kind),
            "score_smoothing": rec.model.score_smoothing,
            "noise_discount": rec.model.noise_discount,
            "normalisation": rec.model.normalisation,
            "align": base["model"]["align"],
        }
        d["training"] = {**base["training"], **KIND_TRAINING}
        d["training"]["epochs"] = KIND_EPOCHS.get(kind, KIND_TRAINING["epochs"])
        out.append(config_from_dict(d))
    if quick:
        out = [
            c.replace(training=dataclasses.replace(c.training, epochs=2, batch_size=256))
            for c in out
        ]
    return out


@dataclass
class RunResult:
    """One fitted model on one split, measured under every threshold policy."""

    name: str
    kind: str
    seed: int
    random_state: int
    train_seconds: float
    score_us_per_window: float
    holdout_mae: float
    val_roc_auc: float
    roc_auc: float
    pr_auc: float
    metrics: dict[str, dict[str, float]]
    test_scores: np.ndarray | None = None
    test_normal: np.ndarray | None = None
    #: ``training.robustness.measure`` at the config's own threshold (seed-split runs only).
    robustness: dict[str, dict[str, float]] = field(default_factory=dict)


def _fit_key(config: TrainConfig) -> str:
    # Everything that decides the fitted weights; smoothing and noise discount only score.
    d = config.to_dict()
    d.pop("name")
    d.pop("description")
    # Alignment only acts at scoring time (the model trains on the beats as cut).
    d["model"] = {
        **d["model"],
        "score_smoothing": None,
        "noise_discount": None,
        "align": None,
        "length_search": None,
    }
    return json.dumps(d, sort_keys=True, default=str)


def _comparable(config: TrainConfig) -> TrainConfig:
    """``config`` with 20 % held-out normals (every policy needs them) and no test loss."""
    if config.training.holdout_fraction <= 0:
        # The seed preset holds out none.
        config = config.replace(training=dataclasses.replace(config.training, holdout_fraction=0.2))
    if config.training.validation == "test":
        # The seed plots test loss; it never steers training, but keep test data out anyway.
        config = config.replace(training=dataclasses.replace(config.training, validation="none"))
    return config


def _fit_or_reuse(
    split: Split,
    config: TrainConfig,
    fitted: dict[str, tuple[AutoencoderDetector, float]] | None,
) -> tuple[AutoencoderDetector, float]:
    """The detector of ``config`` and its training seconds: from ``fitted`` when the same
    weights were fitted before (rescored with ``config``'s scoring), else fitted now."""
    key = _fit_key(config)
    if fitted is not None and key in fitted:
        base, seconds = fitted[key]
        det = base.with_scoring(config.model.score_smoothing, config.model.noise_discount)
        if not config.model.align.enabled:
            det = det.without_alignment()
        gate, search = config.model.align.gate.gate(), config.model.length_search.search()
        if gate is not None or search is not None:  # config checks: both need align
            det = det.with_checks(split.x_fit, gate, search)
        return det, seconds
    t0 = time.perf_counter()
    det, _, _ = fit_detector(split, config)
    seconds = time.perf_counter() - t0
    if fitted is not None:
        fitted[key] = (det, seconds)
    return det, seconds


@dataclass
class _Scores:
    """One detector's scores on every part of one split."""

    fit: np.ndarray
    holdout: np.ndarray
    #: Labelled validation beats of the training split: the held-out normals, then the
    #: abnormal training beats; ``validation_normal`` is 1 for the former.
    validation: np.ndarray
    validation_normal: np.ndarray
    test: np.ndarray
    #: Scoring cost of one batched ``score`` call over the test beats, per window.
    us_per_window: float


def _score_split(det: AutoencoderDetector, split: Split) -> _Scores:
    det.score(split.x_test[:8])  # build the compiled forward pass before timing it
    t0 = time.perf_counter()
    test = det.score(split.x_test)
    us = (time.perf_counter() - t0) / len(split.x_test) * 1e6
    hold = det.score(split.x_holdout)
    abnormal_train = split.x_train[split.y_train == 0]
    return _Scores(
        fit=det.score(split.x_fit),
        holdout=hold,
        validation=np.concatenate([hold, det.score(abnormal_train)]),
        validation_normal=np.r_[np.ones(len(hold), int), np.zeros(len(abnormal_train), int)],
        test=test,
        us_per_window=us,
    )


def _policy_metrics(scores: _Scores, y_test: np.ndarray) -> dict[str, dict[str, float]]:
    """Test accuracy and anomaly precision/recall/F1 at each threshold of :data:`THRESHOLDS`."""
    metrics: dict[str, dict[str, float]] = {}
    for name, policy, params, on in THRESHOLDS:
        if policy == "best_f1":
            value = fit_best_f1_threshold(scores.validation, scores.validation_normal).value
        else:
            calibration = scores.fit if on == "fit" else scores.holdout
            value = fit_threshold(policy, calibration, **params).value
        m = detection_metrics(scores.test, y_test, value)
        a = m["anomaly_positive"]
        metrics[name] = {
            "accuracy": m["normal_positive"]["accuracy"],
            "precision": a["precision"],
            "recall": a["recall"],
            "f1": a["f1"],
        }
    return metrics


def _robustness(
    det: AutoencoderDetector, config: TrainConfig, scores: _Scores, split: Split
) -> dict[str, dict[str, float]]:
    """:func:`training.robustness.measure` at ``config``'s own (label-free) threshold."""
    th = config.threshold
    calibration = scores.fit if th.fit_on == "train" else scores.holdout
    own = fit_threshold(th.policy, calibration, **th.params())
    return measure(det.score, own.value, split.x_test, split.y_test)


def run_once(
    data: Dataset,
    config: TrainConfig,
    keep_scores: bool = False,
    fitted: dict[str, tuple[AutoencoderDetector, float]] | None = None,
    robustness: bool = False,
) -> RunResult:
    """Fit ``config`` once and measure it under every policy of :data:`THRESHOLDS`.

    ``fitted`` caches models across calls: a config that differs from an earlier one only in
    ``model.score_smoothing``/``noise_discount``/``align`` (and name) reuses that fit instead
    of training the same weights again (its ``train_seconds`` are the original fit's).
    ``robustness`` also scores the perturbed test beats of :data:`training.robustness.LEVELS`
    at the config's own threshold.
    """
    config = _comparable(config)
    split = make_split(data, config)
    det, seconds = _fit_or_reuse(split, config, fitted)
    scores = _score_split(det, split)
    y_anom = 1 - split.y_test
    return RunResult(
        name=config.name,
        kind=config.model.kind,
        seed=config.seed,
        random_state=config.split.random_state,
        train_seconds=seconds,
        score_us_per_window=scores.us_per_window,
        holdout_mae=float(np.mean(scores.holdout)),
        val_roc_auc=float(skm.roc_auc_score(1 - scores.validation_normal, scores.validation)),
        roc_auc=float(skm.roc_auc_score(y_anom, scores.test)),
        pr_auc=float(skm.average_precision_score(y_anom, scores.test)),
        metrics=_policy_metrics(scores, split.y_test),
        test_scores=scores.test if keep_scores else None,
        test_normal=split.y_test if keep_scores else None,
        robustness=_robustness(det, config, scores, split) if robustness else {},
    )


@dataclass
class CompareResult:
    """All runs of a comparison, tagged by repetition (``seeds`` or ``splits``)."""

    runs: dict[str, list[RunResult]] = field(default_factory=dict)
    quick: bool = False
    source: str = ""


def compare(
    data: Dataset,
    configs: Sequence[TrainConfig],
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    split_states: Sequence[int] = (1, 2, 3, 4, 5),
    quick: bool = False,
    log: Callable[[str], None] = lambda _m: None,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> CompareResult:
    """Run every config over ``seeds`` (seed split) and over ``split_states`` (other splits).

    Parameters
    ----------
    log : callable
        Called with one line per run (its ROC-AUC and training time).
    progress : callable
        Called as ``progress(done, total)`` after each run (a fit, or a rescoring of an
        earlier fit), ``total`` = configs x (seeds + split states).

    Returns
    -------
    CompareResult
        ``runs["seeds"]`` and ``runs["splits"]``; the first seed run of each config keeps
        its test scores for the ROC plot.
    """
    result = CompareResult(quick=quick, source=data.source)
    result.runs = {"seeds": [], "splits": []}
    fitted: dict[str, tuple[AutoencoderDetector, float]] = {}
    total = len(configs) * (len(seeds) + len(split_states))

    def record(repetition: str, r: RunResult, where: str) -> None:
        result.runs[repetition].append(r)
        log(f"{r.name} {where}: ROC-AUC {r.roc_auc:.4f} ({r.train_seconds:.1f} s)")
        progress(len(result.runs["seeds"]) + len(result.runs["splits"]), total)

    for config in configs:
        for i, seed in enumerate(seeds):
            r = run_once(
                data,
                config.replace(seed=int(seed)),
                keep_scores=i == 0,
                fitted=fitted,
                robustness=True,
            )
            record("seeds", r, f"seed {seed}")
        for state in split_states:
            cfg = config.replace(split=dataclasses.replace(config.split, random_state=int(state)))
            record("splits", run_once(data, cfg, fitted=fitted), f"split {state}")
    return result
