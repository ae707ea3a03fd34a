"""The batch training job: data sources, the seed's split, fitting, evaluation, reports."""

from training.config import TrainConfig, list_presets, load_config
from training.data import DEFAULT_SOURCE, Dataset, load_dataset
from training.errors import DataError, PresetError, TrainingError
from training.evaluate import detection_metrics
from training.job import EvaluationResult, TrainResult, evaluate_artifact, fit_detector, train
from training.split import Split, make_split

__all__ = [
    "DEFAULT_SOURCE",
    "DataError",
    "Dataset",
    "EvaluationResult",
    "PresetError",
    "Split",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "detection_metrics",
    "evaluate_artifact",
    "fit_detector",
    "list_presets",
    "load_config",
    "load_dataset",
    "make_split",
    "train",
]
