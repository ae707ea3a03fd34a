"""The built-in autoencoder kinds: ``dense`` (the seed's), ``conv1d``, ``lstm`` and ``vae``.

Every builder registers itself with :func:`detector.kinds.register_kind` when this module is
imported, and imports Keras inside the builder so that ``import detector`` stays free of Keras.
This module depends on the registry, never the other way round; :mod:`detector.models`
imports it so that every kind is registered. The one custom layer (the VAE's sampling layer,
which also adds the KL term) is defined lazily by :func:`custom_objects` and registered as
serializable under the ``ecgwatch`` package, so ``model.keras`` files load in safe mode.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError
from detector.kinds import non_negative_float, positive_int, positive_ints, register_kind

__all__ = ["custom_objects"]


# --------------------------------------------------------------------------- dense
@register_kind("dense", {"encoder_widths": [32, 16, 8], "activation": "relu"})
def _dense(window_length: int, encoder_widths: list[int], activation: str) -> Any:
    """The seed's autoencoder: 140-32-16-8-16-32-140, relu inside, sigmoid output."""
    import keras
    from keras import layers

    widths = positive_ints("encoder_widths", encoder_widths)
    inputs = keras.Input(shape=(window_length,), name="window")
    x = inputs
    for i, w in enumerate(widths):
        x = layers.Dense(w, activation=activation, name=f"enc_{i}")(x)
    for i, w in enumerate(reversed(widths[:-1])):
        x = layers.Dense(w, activation=activation, name=f"dec_{i}")(x)
    outputs = layers.Dense(window_length, activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="dense_autoencoder")


# --------------------------------------------------------------------------- conv1d
@register_kind(
    "conv1d",
    {"filters": [32, 16], "kernel_size": 7, "latent_dim": 16, "activation": "relu"},
)
def _conv1d(
    window_length: int, filters: list[int], kernel_size: int, latent_dim: int, activation: str
) -> Any:
    """The seed's convolutional autoencoder idea in one dimension.

    Each encoder layer is a stride-2 ``Conv1D`` (halving the length), mirrored by stride-2
    ``Conv1DTranspose`` layers; a final ``Conv1D`` with a sigmoid maps back to one channel.
    ``latent_dim > 0`` (default 16) adds a dense bottleneck of that size between encoder and decoder
    (a much tighter code than the fully convolutional one, which keeps
    ``window_length / 2**len(filters) * filters[-1]`` values).
    """
    import keras
    from keras import layers

    widths = positive_ints("filters", filters)
    k = positive_int("kernel_size", kernel_size)
    latent = int(latent_dim)
    if latent < 0 or isinstance(latent_dim, bool):
        raise DetectorConfigError(f"model.params.latent_dim: {latent_dim!r} must be >= 0")
    # Stride-2 layers need a length divisible by 2**depth: pad with zeros, crop at the end.
    step = 2 ** len(widths)
    padded = -(-window_length // step) * step
    inputs = keras.Input(shape=(window_length,), name="window")
    x = layers.Reshape((window_length, 1), name="to_channels")(inputs)
    if padded != window_length:
        x = layers.ZeroPadding1D((0, padded - window_length), name="pad")(x)
    for i, f in enumerate(widths):
        x = layers.Conv1D(f, k, strides=2, padding="same", activation=activation, name=f"enc_{i}")(
            x
        )
    if latent:
        inner = (padded // step, widths[-1])
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(latent, activation=activation, name="code")(x)
        x = layers.Dense(inner[0] * inner[1], activation=activation, name="expand")(x)
        x = layers.Reshape(inner, name="unflatten")(x)
    for i, f in enumerate(reversed(widths)):
        x = layers.Conv1DTranspose(
            f, k, strides=2, padding="same", activation=activation, name=f"dec_{i}"
        )(x)
    x = layers.Conv1D(1, k, padding="same", activation="sigmoid", name="to_signal")(x)
    if padded != window_length:
        x = layers.Cropping1D((0, padded - window_length), name="crop")(x)
    outputs = layers.Reshape((window_length,), name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="conv1d_autoencoder")


# --------------------------------------------------------------------------- lstm
@register_kind("lstm", {"units": 32, "latent_dim": 16, "step": 7})
def _lstm(window_length: int, units: int, latent_dim: int, step: int) -> Any:
    """Sequence autoencoder: LSTM encoder → dense code → repeated → LSTM decoder → samples.

    Each time step carries ``step`` consecutive samples (140 = 20 steps × 7): a recurrence
    over all 140 single samples costs ~7x more on CPU (about 16 s per epoch on 2 cores)
    for no gain in reconstruction.
    """
    import keras
    from keras import layers

    u = positive_int("units", units)
    latent = positive_int("latent_dim", latent_dim)
    k = positive_int("step", step)
    if window_length % k:
        raise DetectorConfigError(
            f"model.params.step: {step} does not divide window_length {window_length}; "
            "use a divisor such as 4, 5, 7 or 10 for 140"
        )
    steps = window_length // k
    inputs = keras.Input(shape=(window_length,), name="window")
    x = layers.Reshape((steps, k), name="to_sequence")(inputs)
    x = layers.LSTM(u, name="encoder")(x)
    x = layers.Dense(latent, activation="relu", name="code")(x)
    x = layers.RepeatVector(steps, name="repeat")(x)
    x = layers.LSTM(u, return_sequences=True, name="decoder")(x)
    x = layers.TimeDistributed(layers.Dense(k, activation="sigmoid"), name="to_signal")(x)
    outputs = layers.Reshape((window_length,), name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="lstm_autoencoder")


# --------------------------------------------------------------------------- vae
@functools.cache
def custom_objects() -> dict[str, Any]:
    """Define (once) and register the custom layers; returns them by class name.

    Called by the VAE builder and by :meth:`detector.Artifact.load` before a model is
    deserialised, so the registered names resolve in safe mode.
    """
    import keras

    @keras.saving.register_keras_serializable(package="ecgwatch")
    class VAESampling(keras.layers.Layer):  # type: ignore[misc]
        """``(z_mean, z_log_var) -> z``; adds ``kl_weight · KL(q(z|x) || N(0, I))`` as a loss.

        Training draws ``z = mean + exp(log_var / 2) · ε`` (the reparameterisation trick);
        inference returns ``z_mean``, so scoring is deterministic.
        """

        def __init__(self, kl_weight: float = 1e-3, seed: int | None = None, **kwargs: Any):
            super().__init__(**kwargs)
            self.kl_weight = float(kl_weight)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            ops = keras.ops
            z_mean, z_log_var = inputs
            # Clip: an exploding log-variance early in training would give inf/NaN losses.
            z_log_var = ops.clip(z_log_var, -10.0, 10.0)
            kl = -0.5 * ops.mean(
                ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
            )
            self.add_loss(self.kl_weight * kl)
            if not training:
                return z_mean
            eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * eps

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape[0]

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}

    return {"VAESampling": VAESampling}


@register_kind(
    "vae", {"encoder_widths": [32, 16], "latent_dim": 8, "kl_weight": 1e-3, "activation": "relu"}
)
def _vae(
    window_length: int,
    encoder_widths: list[int],
    latent_dim: int,
    kl_weight: float,
    activation: str,
) -> Any:
    """The seed's variational autoencoder (review section), dense encoder and decoder.

    The loss is the compiled reconstruction MAE plus ``kl_weight`` times the KL divergence
    (mean over the batch, summed over latent dimensions); the KL weight is small because
    the MAE is a per-sample mean in ``[0, 1]`` units.
    """
    import keras
    from keras import layers

    widths = positive_ints("encoder_widths", encoder_widths)
    latent = positive_int("latent_dim", latent_dim)
    beta = non_negative_float("kl_weight", kl_weight)
    sampling = custom_objects()["VAESampling"]
    inputs = keras.Input(shape=(window_length,), name="window")
    x = inputs
    for i, w in enumerate(widths):
        x = layers.Dense(w, activation=activation, name=f"enc_{i}")(x)
    z_mean = layers.Dense(latent, name="z_mean")(x)
    z_log_var = layers.Dense(latent, name="z_log_var")(x)
    # The sampling seed comes from the global Keras seed, set by seed_everything() before build.
    seed = int(np.random.randint(0, 2**31 - 1))
    z = sampling(kl_weight=beta, seed=seed, name="sampling")([z_mean, z_log_var])
    x = z
    for i, w in enumerate(reversed(widths)):
        x = layers.Dense(w, activation=activation, name=f"dec_{i}")(x)
    outputs = layers.Dense(window_length, activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="variational_autoencoder")
