"""Autoencoder architectures, one builder per model *kind*.

Every builder returns a functional ``keras.Model`` mapping ``(batch, window_length)`` in
``[0, 1]`` to a reconstruction of the same shape, built only from stock Keras layers (or
layers registered as serializable here) so that ``model.keras`` loads with safe mode on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detector.errors import DetectorConfigError

__all__ = ["MODEL_KINDS", "build_model", "custom_objects", "default_params", "register_kind"]

Builder = Callable[..., Any]
_BUILDERS: dict[str, tuple[Builder, dict[str, Any]]] = {}


def register_kind(name: str, defaults: dict[str, Any]) -> Callable[[Builder], Builder]:
    """Decorator registering a model builder under ``name`` with its default parameters."""

    def deco(fn: Builder) -> Builder:
        _BUILDERS[name] = (fn, dict(defaults))
        return fn

    return deco


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
        A registered model kind (see :data:`MODEL_KINDS`).
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


def _widths(name: str, value: Any) -> list[int]:
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise DetectorConfigError(
            f"model.params.{name}: {value!r} must be a non-empty list of positive integers"
        )
    return [int(v) for v in value]


@register_kind("dense", {"encoder_widths": [32, 16, 8], "activation": "relu"})
def _dense(window_length: int, encoder_widths: list[int], activation: str) -> Any:
    """The seed's autoencoder: 140-32-16-8-16-32-140, relu inside, sigmoid output."""
    import keras
    from keras import layers

    widths = _widths("encoder_widths", encoder_widths)
    inputs = keras.Input(shape=(window_length,), name="window")
    x = inputs
    for i, w in enumerate(widths):
        x = layers.Dense(w, activation=activation, name=f"enc_{i}")(x)
    for i, w in enumerate(reversed(widths[:-1])):
        x = layers.Dense(w, activation=activation, name=f"dec_{i}")(x)
    outputs = layers.Dense(window_length, activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="dense_autoencoder")


# The other kinds live in their own module; importing it registers them. It imports
# ``register_kind`` and ``_widths`` from here, so it must come after their definitions.
from detector import architectures as _architectures  # noqa: E402

#: Names of the registered kinds: dense, conv1d, lstm, vae.
MODEL_KINDS: tuple[str, ...] = tuple(_BUILDERS)


def custom_objects() -> dict[str, Any]:
    """The custom Keras layers some kinds use, registered as serializable (see architectures)."""
    return _architectures.custom_objects()


def __getattr__(name: str) -> Any:
    # ``detector.models.VAESampling`` without importing Keras when the module is imported.
    if name == "VAESampling":
        return _architectures.custom_objects()[name]
    raise AttributeError(f"module 'detector.models' has no attribute {name!r}")
