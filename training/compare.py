"""Model-quality comparison: every model kind × threshold policy, over seeds and splits.

Protocol (the seed's): all beats merged, ``train_test_split(test_size=0.2)``, the model fits
normal training beats only. 20 % of the normal training beats are held out (for the
``quantile`` threshold and the label-free validation loss). No test label steers anything:

* label-free thresholds: ``mean_std`` (k = 1 on the fitted beats, the seed) and ``quantile``
  (q = 0.98 / 0.99 on the held-out normal beats);
* ``best_f1`` uses *labelled validation beats from the training split* (held-out normals +
  the abnormal training beats, which the autoencoder never sees) and is reported apart;
* model selection uses ``val_roc_auc`` on the same validation beats (training split only)
  and the held-out normal MAE; test metrics are only ever reported.

Rows: ``seed`` is the seed preset (dense, 20 epochs of batch 512) with 20 % of its normal
beats held out like every other row; ``recommended`` is that preset as shipped;
``recommended, no alignment``, ``recommended, no noise discount`` and ``recommended, plain
MAE`` are the same fitted model (not retrained) scored without the scoring-time alignment
(``model.align``), without the per-beat noise discount (``model.noise_discount: 0``), and
without it and the residual smoothing (``model.score_smoothing: 0``); the other kinds use
their default architecture, the recommended normalisation and scoring and a smaller training
budget (see ``KIND_TRAINING``).

Robustness: every seed-split run also scores the test beats perturbed as in
``training.robustness`` (offset, gain, baseline wander, noise, a window cut early or late, a
misjudged beat length, one combination; fixed seed), at the config's own label-free
threshold.

Two repetitions are aggregated as mean ± std: 5 seeds on the seed's split
(``random_state = 21``), and 5 other splits (``random_state`` 1…5) with the config's seed.
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

from detector import AutoencoderDetector, default_params, fit_threshold
from detector.threshold import fit_best_f1_threshold
from training.config import TrainConfig, config_from_dict, load_config
from training.data import Dataset
from training.evaluate import detection_metrics
from training.job import fit_detector
from training.robustness import measure
from training.split import make_split

__all__ = [
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
    out = [load_config("seed"), rec]
    out += [config_from_dict(d) for d in (unaligned, smoothed, plain)]
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
        if kind == "lstm":
            # Recurrent steps are sequential: ~4x a conv1d epoch on CPU; halve its epochs.
            d["training"]["epochs"] = KIND_TRAINING["epochs"] // 2
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


def _with_holdout(config: TrainConfig) -> TrainConfig:
    # Every policy needs held-out normal beats; the seed preset has none, so add 20 %.
    if config.training.holdout_fraction > 0:
        return config
    return config.replace(training=dataclasses.replace(config.training, holdout_fraction=0.2))


def _fit_key(config: TrainConfig) -> str:
    # Everything that decides the fitted weights; smoothing and noise discount only score.
    d = config.to_dict()
    d.pop("name")
    d.pop("description")
    # Alignment only acts at scoring time (the model trains on the beats as cut).
    d["model"] = {**d["model"], "score_smoothing": None, "noise_discount": None, "align": None}
    return json.dumps(d, sort_keys=True, default=str)


def run_once(
    data: Dataset,
    config: TrainConfig,
    keep_scores: bool = False,
    fitted: dict[str, tuple[AutoencoderDetector, float]] | None = None,
    robustness: bool = False,
) -> RunResult:
    """Fit ``config`` once and measure it under every policy of :data:`THRESHOLDS`.

    ``fitted`` caches models across calls: a config that differs from an earlier one only in
    ``model.score_smoothing``/``noise_discount`` (and name) reuses that fit instead of
    training the same weights again (its ``train_seconds`` are the original fit's).
    ``robustness`` also scores the perturbed test beats of :data:`training.robustness.LEVELS`
    at the config's own threshold.
    """
    config = _with_holdout(config)
    if config.training.validation == "test":
        # The seed plots test loss; it never steers training, but keep test data out anyway.
        config = config.replace(training=dataclasses.replace(config.training, validation="none"))
    split = make_split(data, config)
    key = _fit_key(config)
    if fitted is not None and key in fitted:
        base, seconds = fitted[key]
        det = base.with_scoring(config.model.score_smoothing, config.model.noise_discount)
        if not config.model.align.enabled:
            det = det.without_alignment()
    else:
        t0 = time.perf_counter()
        det, _, _ = fit_detector(split, config)
        seconds = time.perf_counter() - t0
        if fitted is not None:
            fitted[key] = (det, seconds)
    det.score(split.x_test[:8])  # build the compiled forward pass before timing it
    t0 = time.perf_counter()
    test = det.score(split.x_test)
    us = (time.perf_counter() - t0) / len(split.x_test) * 1e6
    fit_scores, hold = det.score(split.x_fit), det.score(split.x_holdout)
    abnormal_train = split.x_train[split.y_train == 0]
    val_scores = np.concatenate([hold, det.score(abnormal_train)])
    val_normal = np.r_[np.ones(len(hold), int), np.zeros(len(abnormal_train), int)]
    metrics: dict[str, dict[str, float]] = {}
    for name, policy, params, on in THRESHOLDS:
        if policy == "best_f1":
            value = fit_best_f1_threshold(val_scores, val_normal).value
        else:
            value = fit_threshold(policy, fit_scores if on == "fit" else hold, **params).value
        m = detection_metrics(test, split.y_test, value)
        a = m["anomaly_positive"]
        metrics[name] = {
            "accuracy": m["normal_positive"]["accuracy"],
            "precision": a["precision"],
            "recall": a["recall"],
            "f1": a["f1"],
        }
    y_anom = 1 - split.y_test
    perturbed: dict[str, dict[str, float]] = {}
    if robustness:
        th = config.threshold
        own = fit_threshold(
            th.policy,
            fit_scores if th.fit_on == "train" else hold,
            **th.params(),
        )
        perturbed = measure(det.score, own.value, split.x_test, split.y_test)
    return RunResult(
        name=config.name,
        kind=config.model.kind,
        seed=config.seed,
        random_state=config.split.random_state,
        train_seconds=seconds,
        score_us_per_window=us,
        holdout_mae=float(np.mean(hold)),
        val_roc_auc=float(skm.roc_auc_score(1 - val_normal, val_scores)),
        roc_auc=float(skm.roc_auc_score(y_anom, test)),
        pr_auc=float(skm.average_precision_score(y_anom, test)),
        metrics=metrics,
        test_scores=test if keep_scores else None,
        test_normal=split.y_test if keep_scores else None,
        robustness=perturbed,
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
) -> CompareResult:
    """Run every config over ``seeds`` (seed split) and over ``split_states`` (other splits).

    Returns
    -------
    CompareResult
        ``runs["seeds"]`` and ``runs["splits"]``; the first seed run of each config keeps
        its test scores for the ROC plot.
    """
    result = CompareResult(quick=quick, source=data.source)
    result.runs = {"seeds": [], "splits": []}
    fitted: dict[str, tuple[AutoencoderDetector, float]] = {}
    for config in configs:
        for i, seed in enumerate(seeds):
            r = run_once(
                data,
                config.replace(seed=int(seed)),
                keep_scores=i == 0,
                fitted=fitted,
                robustness=True,
            )
            result.runs["seeds"].append(r)
            log(f"{config.name} seed {seed}: ROC-AUC {r.roc_auc:.4f} ({r.train_seconds:.1f} s)")
        for state in split_states:
            cfg = config.replace(split=dataclasses.replace(config.split, random_state=int(state)))
            r = run_once(data, cfg, fitted=fitted)
            result.runs["splits"].append(r)
            log(f"{config.name} split {state}: ROC-AUC {r.roc_auc:.4f} ({r.train_seconds:.1f} s)")
    return result
