"""Training configuration: YAML presets validated into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from detector.align import AlignmentGrid
from detector.errors import DetectorConfigError
from detector.normalise import NORMALISATIONS
from detector.scoring import check_noise_discount, check_score_smoothing
from detector.threshold import POLICIES
from training.errors import PresetError

__all__ = [
    "AlignConfig",
    "AugmentConfig",
    "FitConfig",
    "ModelConfig",
    "SplitConfig",
    "ThresholdConfig",
    "TrainConfig",
    "config_from_dict",
    "list_presets",
    "load_config",
]


@dataclass(frozen=True)
class SplitConfig:
    """How beats are split: the seed's ``train_test_split`` over all merged beats."""

    test_size: float = 0.2
    random_state: int = 21


@dataclass(frozen=True)
class AlignConfig:
    """Scoring-time alignment (``detector.align``): the bounded shift/stretch search.

    ``max_shift`` 0 and ``max_stretch`` 0 (the default) turn it off.
    """

    max_shift: int = 0
    max_stretch: float = 0.0
    scale_steps: int = 1
    #: Correlation gain a candidate needs over the window as cut (``AlignmentGrid.margin``).
    margin: float = 0.0

    @property
    def enabled(self) -> bool:
        """Whether any candidate other than the identity is searched."""
        return self.max_shift > 0 or self.max_stretch > 0

    def grid(self) -> AlignmentGrid | None:
        """The detector's grid, or ``None`` when off."""
        if not self.enabled:
            return None
        return AlignmentGrid(self.max_shift, self.max_stretch, self.scale_steps, self.margin)


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (``training.augment``); ``copies`` 0 (default) is off."""

    copies: int = 0
    #: Largest random shift, samples.
    max_shift: float = 0.0
    #: Largest random stretch, as a fraction of the beat's length.
    max_stretch: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """Model kind and architecture parameters (see ``detector.models``)."""

    kind: str = "dense"
    params: dict[str, Any] = field(default_factory=dict)
    #: Gaussian sigma (samples) of the residual low-pass before the MAE; 0 = plain MAE.
    score_smoothing: float = 0.0
    #: Weight of the per-beat noise discount (``detector.scoring``); 0 = off.
    noise_discount: float = 0.0
    #: ``minmax_global`` (the seed) or ``zscore_window`` (``detector.normalise``).
    normalisation: str = "minmax_global"
    align: AlignConfig = field(default_factory=AlignConfig)


@dataclass(frozen=True)
class FitConfig:
    """Optimiser settings and what the fit validates against."""

    epochs: int = 20
    batch_size: int = 512
    learning_rate: float = 1e-3
    noise_factor: float = 0.0
    #: ``test``: loss curve on the test split (the seed does this; it never steers training);
    #: ``holdout``: held-out normal training beats (needed for early stopping); ``none``.
    validation: str = "test"
    #: Fraction of the normal training beats held out from fitting (0 = the seed).
    holdout_fraction: float = 0.0
    early_stopping_patience: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class ThresholdConfig:
    """Label-free threshold policy: ``mean_std`` (mean + k·std) or ``quantile`` (q)."""

    policy: str = "mean_std"
    k: float = 1.0
    q: float = 0.99
    #: Scores it is computed on: ``train`` (normal beats the model was fitted on, the seed)
    #: or ``holdout`` (held-out normal beats).
    fit_on: str = "train"

    def params(self) -> dict[str, float]:
        """The policy's own parameter, as ``detector.fit_threshold`` takes it."""
        return {"k": self.k} if self.policy == "mean_std" else {"q": self.q}


@dataclass(frozen=True)
class TrainConfig:
    """A complete training run description."""

    name: str = "custom"
    description: str = ""
    seed: int = 42
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: FitConfig = field(default_factory=FitConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (stored in ``detector.json``)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with top-level fields replaced."""
        return dataclasses.replace(self, **changes)


_CHOICES = {
    "training.validation": ("test", "holdout", "none"),
    "threshold.policy": POLICIES,
    "threshold.fit_on": ("train", "holdout"),
    "model.normalisation": tuple(NORMALISATIONS),
}


def _check_type(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)  # type: ignore[arg-type]
    base = origin or hint
    ok = isinstance(value, base) and not (isinstance(value, bool) and base in (int, float))
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise PresetError(
            f"{key}: {value!r} is a {type(value).__name__}, expected "
            f"{getattr(base, '__name__', base)}"
        )
    if key in _CHOICES and value not in _CHOICES[key]:
        raise PresetError(f"{key}: {value!r} is not allowed; choose one of {_CHOICES[key]}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise PresetError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise PresetError(f"{full}: unknown key; allowed here: {names}")
        kwargs[key] = _check_type(full, value, hints[key])
    return cls(**kwargs)


def _validate_ranges(cfg: TrainConfig) -> None:
    checks = [
        (0.0 < cfg.split.test_size < 1.0, "split.test_size", cfg.split.test_size, "in (0, 1)"),
        (cfg.training.epochs >= 1, "training.epochs", cfg.training.epochs, ">= 1"),
        (cfg.training.batch_size >= 1, "training.batch_size", cfg.training.batch_size, ">= 1"),
        (
            cfg.training.learning_rate > 0,
            "training.learning_rate",
            cfg.training.learning_rate,
            "> 0",
        ),
        (
            cfg.training.noise_factor >= 0,
            "training.noise_factor",
            cfg.training.noise_factor,
            ">= 0",
        ),
        (
            0.0 <= cfg.training.holdout_fraction < 1.0,
            "training.holdout_fraction",
            cfg.training.holdout_fraction,
            "in [0, 1)",
        ),
        (0.0 < cfg.threshold.q < 1.0, "threshold.q", cfg.threshold.q, "in (0, 1)"),
    ]
    aug = cfg.training.augment
    checks += [
        (0 <= aug.copies <= 20, "training.augment.copies", aug.copies, "from 0 (off) to 20"),
        (
            0.0 <= aug.max_shift <= 20,
            "training.augment.max_shift",
            aug.max_shift,
            "from 0 to 20 samples",
        ),
        (
            0.0 <= aug.max_stretch <= 0.3,
            "training.augment.max_stretch",
            aug.max_stretch,
            "from 0 to 0.3",
        ),
        (
            not cfg.model.align.enabled or cfg.model.normalisation == "zscore_window",
            "model.align",
            cfg.model.align,
            "off unless model.normalisation is 'zscore_window' (the template is z-normalised)",
        ),
    ]
    for ok, key, value, allowed in checks:
        if not ok:
            raise PresetError(f"{key}: {value!r} is not allowed; must be {allowed}")
    try:  # the detector's own checks: one definition of each range
        check_score_smoothing(cfg.model.score_smoothing)
        check_noise_discount(cfg.model.noise_discount, cfg.model.score_smoothing)
        cfg.model.align.grid()
    except DetectorConfigError as exc:
        raise PresetError(f"model.{exc}") from exc
    needs_holdout = (
        cfg.training.validation == "holdout"
        or cfg.threshold.fit_on == "holdout"
        or cfg.training.early_stopping_patience is not None
    )
    if needs_holdout and cfg.training.holdout_fraction == 0.0:
        raise PresetError(
            "training.holdout_fraction: 0.0, but validation/threshold/early stopping use held-out "
            "normal beats; set it to e.g. 0.2"
        )


def list_presets() -> list[str]:
    """Names of the presets shipped with ecgwatch."""
    folder = resources.files("training") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(preset_or_path: str) -> TrainConfig:
    """Load and validate a preset by name (``seed``…) or a YAML file by path.

    Raises
    ------
    PresetError
        Naming the key, the value and what is allowed.
    """
    path = Path(preset_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text, origin = path.read_text(), str(path)
    else:
        res = resources.files("training") / "presets" / f"{preset_or_path}.yaml"
        if not res.is_file():
            raise PresetError(
                f"--preset: {preset_or_path!r} is neither a preset ({', '.join(list_presets())})"
                " nor a YAML file"
            )
        text, origin = res.read_text(), preset_or_path
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PresetError(f"{origin}: not valid YAML: {exc}") from exc
    return config_from_dict(data)


def config_from_dict(data: Any) -> TrainConfig:
    """Validate a plain mapping (a parsed preset, or ``detector.json``'s ``config``)."""
    cfg = typing.cast(TrainConfig, _build(TrainConfig, data, ""))
    _validate_ranges(cfg)
    return cfg
