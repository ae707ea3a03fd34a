"""A plain NumPy forward pass for chains of Dense layers (the ``dense`` kind) on the CPU.

For a 140-32-16-8-16-32-140 network the arithmetic is tiny; a framework call costs more than
the matrix products at the batch sizes a worker scores (``docs/performance.md``). The NumPy
pass uses the same float32 weights read from the loaded Keras model and is checked against
Keras once, when it is built: if any output differs by more than :data:`TOLERANCE`, or the
model is not a plain Dense chain, :func:`numpy_forward` returns ``None`` and Keras is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["TOLERANCE", "numpy_forward"]

#: Largest allowed absolute difference to the Keras reconstruction in the self-check.
TOLERANCE = 1e-5

Forward = Callable[[np.ndarray], np.ndarray]


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # In place: 1 / (1 + exp(-x)); float32 exp overflow to inf gives 0, which is right.
    np.negative(x, out=x)
    with np.errstate(over="ignore"):
        np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, out=x)


def _linear(x: np.ndarray) -> np.ndarray:
    return x


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": _relu,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "linear": _linear,
}


def _dense_chain(model: Any) -> list[tuple[np.ndarray, np.ndarray, str]] | None:
    """(kernel, bias, activation) per layer, or None when the model is not a Dense chain."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    chain = []
    previous = None
    for layer in layers:
        if type(layer).__name__ != "Dense":
            return None
        act = getattr(layer.activation, "__name__", "")
        if act not in _ACTIVATIONS or not layer.use_bias:
            return None
        # Functional models: each layer must consume the previous one's output (no branches).
        inbound = getattr(layer, "_inbound_nodes", None) or []
        if previous is not None and len(inbound) == 1:
            parents = [t._keras_history[0] for t in inbound[0].input_tensors]
            if parents != [previous]:
                return None
        kernel, bias = (np.asarray(w, dtype=np.float32) for w in layer.get_weights())
        chain.append((np.ascontiguousarray(kernel), bias, act))
        previous = layer
    return chain or None


def numpy_forward(model: Any, window_length: int, seed: int = 0) -> Forward | None:
    """Build ``z -> reconstruction`` in NumPy from a Keras Dense chain, or return None.

    Parameters
    ----------
    model : keras.Model
        The loaded autoencoder.
    window_length : int
        Input width (used for the self-check batch).
    seed : int
        Seed of the random self-check batch.

    Returns
    -------
    callable or None
        ``f(z)`` with ``z`` float32 of shape (n, window_length); None when the model is not
        a plain chain of Dense layers or the self-check against Keras fails.
    """
    try:
        chain = _dense_chain(model)
    except Exception:  # any unexpected model structure: stay on Keras
        return None
    if chain is None:
        return None
    steps = [(k, b, _ACTIVATIONS[a]) for k, b, a in chain]

    def forward(z: np.ndarray) -> np.ndarray:
        x = np.asarray(z, dtype=np.float32)
        for kernel, bias, act in steps:
            x = x @ kernel
            x += bias
            x = act(x)
        return x

    import keras

    probe = np.random.default_rng(seed).random((64, window_length), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(probe, training=False))
    if not np.allclose(forward(probe), expected, rtol=0.0, atol=TOLERANCE):
        return None
    return forward
