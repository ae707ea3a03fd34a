"""A plain NumPy forward pass for chains of Dense layers (the ``dense`` kind) on the CPU.

For a 140-32-16-8-16-32-140 network the arithmetic is tiny; a framework call costs more than
the matrix products at the batch sizes a worker scores (``docs/performance.md``). The NumPy
pass uses the same float32 weights read from the loaded Keras model and is checked against
Keras once, when it is built: if any output differs by more than :data:`TOLERANCE`, or the
model is not a plain Dense chain, :func:`checked_chain` returns ``None`` and Keras is used.

A checked chain is also saved with the artifact (:func:`chain_bytes`, ``forward.npz``), so a
CPU worker scores without importing Keras and TensorFlow at all (:func:`load_chain`): start-up
takes seconds, not the framework's import time, and hundreds of MiB less memory.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "TOLERANCE",
    "Chain",
    "chain_bytes",
    "checked_chain",
    "forward_of",
    "load_chain",
]

#: Largest allowed absolute difference to the Keras reconstruction in the self-check.
TOLERANCE = 1e-5

Forward = Callable[[np.ndarray], np.ndarray]

#: ``(kernel, bias, activation name)`` per Dense layer, input to output; float32 arrays.
Chain = list[tuple[np.ndarray, np.ndarray, str]]


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


def _dense_chain(model: Any) -> Chain | None:
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


def forward_of(chain: Chain) -> Forward:
    """``z -> reconstruction`` of a Dense chain, in NumPy (float32 throughout)."""
    steps = [(k, b, _ACTIVATIONS[a]) for k, b, a in chain]

    def forward(z: np.ndarray) -> np.ndarray:
        x = np.asarray(z, dtype=np.float32)
        for kernel, bias, act in steps:
            x = x @ kernel
            x += bias
            x = act(x)
        return x

    return forward


def checked_chain(model: Any, window_length: int, seed: int = 0) -> Chain | None:
    """The model's Dense chain if the NumPy pass over it matches Keras, else None.

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
    Chain or None
        None when the model is not a plain chain of Dense layers, or when any output of
        the self-check differs from Keras by more than :data:`TOLERANCE`.
    """
    try:
        chain = _dense_chain(model)
    except Exception:  # any unexpected model structure: stay on Keras
        return None
    if chain is None:
        return None
    import keras

    probe = np.random.default_rng(seed).random((64, window_length), dtype=np.float32)
    expected = keras.ops.convert_to_numpy(model(probe, training=False))
    if not np.allclose(forward_of(chain)(probe), expected, rtol=0.0, atol=TOLERANCE):
        return None
    return chain


def chain_bytes(chain: Chain) -> bytes:
    """A checked chain as ``.npz`` bytes (no pickles: plain arrays and activation names)."""
    arrays: dict[str, np.ndarray] = {"activations": np.array([a for _, _, a in chain])}
    for i, (kernel, bias, _) in enumerate(chain):
        arrays[f"kernel_{i}"], arrays[f"bias_{i}"] = kernel, bias
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub misses **kwds
    return buf.getvalue()


def load_chain(path: str | os.PathLike[str], window_length: int) -> Chain:
    """Read :func:`chain_bytes`' file back, checking every shape against the next layer.

    Raises
    ------
    ValueError
        Naming what is wrong (unknown activation, missing or mismatched array, a first or
        last width other than ``window_length``).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"not a readable .npz file ({exc})") from exc
    names = [str(a) for a in arrays.pop("activations", np.array([]))]
    chain: Chain = []
    width = window_length
    for i, act in enumerate(names):
        if act not in _ACTIVATIONS:
            raise ValueError(f"layer {i}: activation {act!r} is not one of {sorted(_ACTIVATIONS)}")
        kernel, bias = arrays.get(f"kernel_{i}"), arrays.get(f"bias_{i}")
        if kernel is None or bias is None or kernel.ndim != 2 or kernel.shape[0] != width:
            raise ValueError(f"layer {i}: no kernel of shape ({width}, k) with its bias")
        if bias.shape != (kernel.shape[1],):
            raise ValueError(f"layer {i}: bias shape {bias.shape} != ({kernel.shape[1]},)")
        chain.append((np.ascontiguousarray(kernel, np.float32), bias.astype(np.float32), act))
        width = kernel.shape[1]
    if not chain:
        raise ValueError("no layers (an empty 'activations' array)")
    if width != window_length:
        raise ValueError(
            f"the chain maps {window_length} samples to {width}, not back to {window_length}"
        )
    return chain
