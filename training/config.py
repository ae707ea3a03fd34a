"""Training configuration: YAML presets validated into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import dacite
import yaml

from detector.align import AlignmentGrid
from detector.beats import BeatRecipe
from detector.errors import DetectorConfigError
from detector.gate import AlignmentGate
from detector.length import LengthSearch
from detector.normalise import NORMALISATIONS
from detector.scoring import check_noise_discount, check_score_smoothing
from detector.threshold import POLICIES
from detector.validation import WINDOW_LENGTH
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
class AlignGateConfig:
    """The model's say on alignment (``detector.gate``); ``gain`` 0 (default) is off."""

    #: The aligned score is taken when this many times lower than the score as cut.
    gain: float = 0.0
    #: ... or when at most this quantile of the fitted beats' aligned scores.
    accept_quantile: float = 0.99

    @property
    def enabled(self) -> bool:
        """Whether the gate is on."""
        return self.gain > 0

    def gate(self) -> AlignmentGate | None:
        """The detector's gate (levels set by fitting), or ``None`` when off."""
        return AlignmentGate(self.gain, self.accept_quantile) if self.enabled else None


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
    gate: AlignGateConfig = field(default_factory=AlignGateConfig)

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
class LengthSearchConfig:
    """Scoring-time length search (``detector.length``); ``max_error`` 0 (default) is off.

    Needs ``align`` (its template and shift search).
    """

    #: Largest length error undone, as a fraction of the beat (0.1 = 10 %).
    max_error: float = 0.0
    #: Lengths tried (odd; the window as cut is the middle one).
    steps: int = 9
    #: How many times lower a length must score to replace the window's score.
    gain: float = 1.5

    @property
    def enabled(self) -> bool:
        """Whether the search runs."""
        return self.max_error > 0

    def search(self) -> LengthSearch | None:
        """The detector's search (its floor is set by fitting), or ``None`` when off."""
        if not self.enabled:
            return None
        return LengthSearch(self.max_error, self.steps, self.gain)


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
    length_search: LengthSearchConfig = field(default_factory=LengthSearchConfig)


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
    #: Overrides of :class:`detector.beats.BeatRecipe`: how WFDB records are cut for training
    #: and, recorded in ``detector.json``, how ``ecgwatch ingest`` cuts live feeds.
    beat_recipe: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (stored in ``detector.json``)."""
        return dataclasses.asdict(self)

    def recipe(self) -> BeatRecipe:
        """The beat recipe: the defaults with this config's ``beat_recipe`` overrides."""
        return BeatRecipe.from_dict({**BeatRecipe().to_dict(), **self.beat_recipe})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with top-level fields replaced."""
        return dataclasses.replace(self, **changes)


_CHOICES = {
    "training.validation": ("test", "holdout", "none"),
    "threshold.policy": POLICIES,
    "threshold.fit_on": ("train", "holdout"),
    "model.normalisation": tuple(NORMALISATIONS),
}

#: section -> (key, test, what is allowed): the ranges a type hint cannot say. The model's
#: options are checked by the detector itself (``_check_model``), not here.
_RANGES: dict[str, tuple[tuple[str, Callable[[Any], bool], str], ...]] = {
    "split": (("test_size", lambda v: 0.0 < v < 1.0, "in (0, 1)"),),
    "training": (
        ("epochs", lambda v: v >= 1, ">= 1"),
        ("batch_size", lambda v: v >= 1, ">= 1"),
        ("learning_rate", lambda v: v > 0, "> 0"),
        ("noise_factor", lambda v: v >= 0, ">= 0"),
        ("holdout_fraction", lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    ),
    "threshold": (("q", lambda v: 0.0 < v < 1.0, "in (0, 1)"),),
    "training.augment": (
        ("copies", lambda v: 0 <= v <= 20, "from 0 (off) to 20"),
        ("max_shift", lambda v: 0.0 <= v <= 20, "from 0 to 20 samples"),
        ("max_stretch", lambda v: 0.0 <= v <= 0.3, "from 0 to 0.3"),
    ),
}


class _UnknownKey(dacite.DaciteFieldError):
    """A key no field of the section has. A ``DaciteFieldError`` so that dacite prefixes the
    path of the sections above it (``align.shift`` -> ``model.align.shift``); its own strict
    mode says which keys, but not where."""

    def __init__(self, key: Any, allowed: list[str]) -> None:
        super().__init__(field_path=str(key))
        self.allowed = allowed


def _section_hook(cls: type) -> Callable[[Any], Any]:
    names = [f.name for f in dataclasses.fields(cls)]

    def check(data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise dacite.WrongTypeError(field_type=cls, value=data)
        for key in data:
            if key not in names:
                raise _UnknownKey(key, names)
        return data

    return check


def _not_bool(expected: type, value: Any) -> Any:
    # bool is an int subclass: without this, ``epochs: yes`` would be accepted as 1.
    if isinstance(value, bool):
        raise dacite.WrongTypeError(field_type=expected, value=value)
    return value


def _as_float(value: Any) -> Any:
    # YAML reads ``learning_rate: 1`` as an int; a float field takes it as 1.0.
    value = _not_bool(float, value)
    return float(value) if isinstance(value, int) else value


def _type_hooks(root: type) -> dict[Any, Callable[[Any], Any]]:
    """The number hooks, and a section hook for ``root`` and every dataclass below it."""
    hooks: dict[Any, Callable[[Any], Any]] = {int: functools.partial(_not_bool, int)}
    hooks[float] = _as_float
    todo = [root]
    while todo:
        cls = todo.pop()
        hooks[cls] = _section_hook(cls)
        hints = typing.get_type_hints(cls).values()
        todo += [h for h in hints if isinstance(h, type) and dataclasses.is_dataclass(h)]
    return hooks


#: dacite does the walk (nested sections, ``int | None``, defaults); the hooks add what its
#: ``isinstance`` check lacks: int is not bool, a float field takes an int, and a section
#: names its unknown key with the full path. ``strict`` is the net under the section hooks.
_DACITE = dacite.Config(type_hooks=_type_hooks(TrainConfig), strict=True)


def _message(exc: dacite.DaciteError) -> str:
    """dacite's error as one line naming the key, the value and what is expected."""
    if isinstance(exc, _UnknownKey):
        return f"{exc.field_path}: unknown key; allowed here: {exc.allowed}"
    if isinstance(exc, dacite.WrongTypeError):
        key, value = exc.field_path or "config", exc.value
        if dataclasses.is_dataclass(exc.field_type):
            return f"{key}: expected a mapping, got {type(value).__name__}"
        if typing.get_origin(exc.field_type) is dict and not isinstance(value, Mapping):
            # Said without the value: for a string dacite hands on the text of a generator
            # it built from it, not what the user wrote.
            return f"{key}: expected a mapping of names to values, got {type(value).__name__}"
        hint = exc.field_type
        # ``dict[str, Any]`` prints as such; its ``__name__`` would say only ``dict``.
        expected = (
            hint.__name__ if hasattr(hint, "__name__") and not typing.get_args(hint) else hint
        )
        return f"{key}: {value!r} is a {type(value).__name__}, expected {expected}"
    return f"config: {exc}"


def _at(cfg: TrainConfig, dotted: str) -> Any:
    return functools.reduce(getattr, dotted.split("."), cfg)


def _check_choices(cfg: TrainConfig) -> None:
    for key, allowed in _CHOICES.items():
        value = _at(cfg, key)
        if value not in allowed:
            raise PresetError(f"{key}: {value!r} is not allowed; choose one of {allowed}")


def _check_ranges(cfg: TrainConfig) -> None:
    for section, checks in _RANGES.items():
        for name, ok, allowed in checks:
            value = _at(cfg, f"{section}.{name}")
            if not ok(value):
                raise PresetError(f"{section}.{name}: {value!r} is not allowed; must be {allowed}")


def _check_model(cfg: TrainConfig) -> None:
    model = cfg.model
    if model.align.enabled and model.normalisation != "zscore_window":
        raise PresetError(
            f"model.align: {model.align!r} is not allowed; must be off unless "
            "model.normalisation is 'zscore_window' (the template is z-normalised)"
        )
    if model.align.gate.enabled and not model.align.enabled:
        raise PresetError(
            f"model.align.gate: gain {model.align.gate.gain!r} needs model.align (e.g. "
            "max_shift: 6): it decides when the aligned window's score is taken"
        )
    if model.length_search.enabled and not (
        model.align.enabled and model.normalisation == "zscore_window"
    ):
        raise PresetError(
            f"model.length_search: max_error {model.length_search.max_error!r} needs "
            "model.normalisation 'zscore_window' and model.align (e.g. max_shift: 6): the "
            "search uses the alignment's template and shift search"
        )
    try:  # the detector's own checks: one definition of each range
        check_score_smoothing(model.score_smoothing)
        check_noise_discount(model.noise_discount, model.score_smoothing)
        model.align.grid()
        model.align.gate.gate()
        model.length_search.search()
    except DetectorConfigError as exc:
        raise PresetError(f"model.{exc}") from exc


def _check_recipe(cfg: TrainConfig) -> None:
    window = cfg.beat_recipe.get("window", WINDOW_LENGTH)
    if window != WINDOW_LENGTH:
        raise PresetError(
            f"beat_recipe.window: {window!r} is not allowed; the models take "
            f"{WINDOW_LENGTH}-sample windows (ECG5000's), so leave it out"
        )
    try:  # the recipe's own checks, naming the key
        cfg.recipe()
    except (DetectorConfigError, TypeError) as exc:
        raise PresetError(str(exc)) from exc


def _check_holdout(cfg: TrainConfig) -> None:
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
    """Validate a plain mapping (a parsed preset, or ``detector.json``'s ``config``).

    Raises
    ------
    PresetError
        Naming the key (full dotted path), the value and what is allowed.
    """
    try:
        _section_hook(TrainConfig)(data)  # dacite's hooks run only for nested sections
        cfg = dacite.from_dict(TrainConfig, data, _DACITE)
    except dacite.DaciteError as exc:
        raise PresetError(_message(exc)) from None
    _check_choices(cfg)
    _check_ranges(cfg)
    _check_model(cfg)
    _check_recipe(cfg)
    _check_holdout(cfg)
    return cfg
