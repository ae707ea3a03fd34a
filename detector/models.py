"""Autoencoder model kinds: what ``model.kind`` may name, and how one is built.

Every kind maps ``(batch, window_length)`` in ``[0, 1]`` to a reconstruction of the same
shape, built only from stock Keras layers (or layers registered as serializable) so that
``model.keras`` loads with safe mode on. The registry is :mod:`detector.kinds`; the built-in
builders are :mod:`detector.architectures`, imported here so that every kind is registered
whenever this module is. Importing it does not import Keras.

A new kind: decorate its builder with ``@register_kind("name", defaults)`` in
:mod:`detector.architectures`.
"""

from __future__ import annotations

from detector import architectures
from detector.kinds import build_model, default_params, register_kind, registered_kinds

__all__ = ["MODEL_KINDS", "build_model", "custom_objects", "default_params", "register_kind"]

#: Names of the built-in kinds: dense, conv1d, lstm, vae.
MODEL_KINDS: tuple[str, ...] = registered_kinds()

#: The custom Keras layers some kinds use, by class name (see :mod:`detector.architectures`).
custom_objects = architectures.custom_objects
