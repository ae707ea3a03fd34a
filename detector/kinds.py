"""The model-kind registry: which builder makes each kind, with its default parameters.

Knows no builder itself: :mod:`detector.architectures` registers every built-in kind with
:func:`register_kind` when it is imported, and :mod:`detector.models` (the public face:
``MODEL_KINDS``, ``build_model``, ...) imports it. The parameter checks the builders share
live here too, so the builders depend on this module and nothing depends back on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detector.errors import DetectorConfigError

__all__ = ["build_model", "default_params", "register_kind", "registered_kinds"]

Builder = Callable[..., Any]
_BUILDERS: dict[str, tuple[Builder, dict[str, Any]]] = {}


def register_kind(name: str, defaults: dict[str, Any]) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder under ``name`` with its default parameters."""

    def deco(fn: Builder) -> Builder:
        _BUILDERS[name] = (fn, dict(defaults))
        return fn

    return deco


def registered_kinds() -> tuple[str, ...]:
    """Names of the kinds registered so far, in registration order."""
    return tuple(_BUILDERS)


def default_params(kind: str) -> dict[str, Any]:
    """Default architecture parameters of ``kind``."""
    _check_kind(kind)
    return dict(_BUILDERS[kind][1])


def _check_kind(kind: str) -> None:
    if kind not in _BUILDERS:
        raise DetectorConfigError(
            f"model.kind: {kind!r} is not a known model kind; choose one of {sorted(_BUILDERS)}"
        )


def build_model(kind: str, window_length: int, params: dict[str, Any] | None = None) -> Any:
    """Build an uncompiled autoencoder.

    Parameters
    ----------
    kind : str
        A registered model kind (see :data:`detector.models.MODEL_KINDS`).
    window_length : int
        Samples per window.
    params : dict, optional
        Overrides of the kind's default parameters; unknown keys are an error.

    Returns
    -------
    keras.Model
    """
    _check_kind(kind)
    fn, defaults = _BUILDERS[kind]
    merged = dict(defaults)
    for key, value in (params or {}).items():
        if key not in defaults:
            raise DetectorConfigError(
                f"model.params.{key}: not a parameter of kind {kind!r}; allowed: {sorted(defaults)}"
            )
        merged[key] = value
    return fn(window_length, **merged)


# ------------------------------------------------------------------ parameter checks
def positive_ints(name: str, value: Any) -> list[int]:
    """``value`` as a non-empty list of positive integers (layer widths, filter counts)."""
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise DetectorConfigError(
            f"model.params.{name}: {value!r} must be a non-empty list of positive integers"
        )
    return [int(v) for v in value]


def positive_int(name: str, value: Any) -> int:
    """``value`` as a positive integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DetectorConfigError(f"model.params.{name}: {value!r} must be a positive integer")
    return int(value)


def non_negative_float(name: str, value: Any) -> float:
    """``value`` as a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise DetectorConfigError(f"model.params.{name}: {value!r} must be a number >= 0")
    return float(value)
