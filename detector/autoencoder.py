"""The autoencoder detector: fit on normal beats, score windows by reconstruction MAE."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.align import AlignmentGrid
from detector.checks import fit_levels, scores_of
from detector.errors import DetectorConfigError, InvalidWindowError, NotFittedError
from detector.fastpath import Chain
from detector.gate import AlignmentGate
from detector.length import LengthSearch
from detector.models import build_model, default_params
from detector.normalise import (
    NORMALISATIONS,
    MinMaxNormaliser,
    Normaliser,
    WindowNormaliser,
    flat_detail,
    flat_rows,
)
from detector.scoring import (
    check_noise_discount,
    check_score_smoothing,
    noise_level,
)
from detector.validation import FLAT_WINDOW, WINDOW_LENGTH, validate_batch

__all__ = [
    "AutoencoderDetector",
    "EpochCallback",
    "FitHistory",
    "FitOptions",
    "seed_everything",
]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend, and ask TensorFlow for deterministic ops."""
    import keras

    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Without this, some CPU kernels (reductions, scatter) may vary run to run.
        tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class FitOptions:
    """How :meth:`AutoencoderDetector.fit` trains (the data are ``fit``'s own arguments).

    Parameters
    ----------
    epochs, batch_size, learning_rate : training hyper-parameters (Adam, MAE loss).
    noise_factor : float, default 0
        Denoising training: inputs get ``noise_factor * N(0, 1)`` added (clipped to
        [0, 1]) while the target stays clean.
    early_stopping_patience : int, optional
        Stop when validation loss has not improved for this many epochs and restore the
        best weights (needs ``fit``'s ``validation_data``).
    seed : int
        Seeds every random source before the model is built.
    verbose : int
        Keras progress output (0 silent, 1 progress bar, 2 one line per epoch).
    steps_per_execution : int, optional
        Optimiser steps per compiled call; default: one call per epoch. Results do not
        depend on it (``benchmarks/training.py`` times 1 against the default).
    """

    epochs: int = 20
    batch_size: int = 512
    learning_rate: float = 1e-3
    noise_factor: float = 0.0
    early_stopping_patience: int | None = None
    seed: int = 0
    verbose: int = 0
    steps_per_execution: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise DetectorConfigError(
                f"epochs/batch_size: got {self.epochs}/{self.batch_size}; both must be >= 1"
            )
        if self.steps_per_execution is not None and self.steps_per_execution < 1:
            raise DetectorConfigError(
                f"steps_per_execution: got {self.steps_per_execution}; must be >= 1 (or None)"
            )
        if self.noise_factor < 0:
            raise DetectorConfigError(f"noise_factor: {self.noise_factor} must be >= 0")


#: ``on_epoch(done, epochs, logs)`` of :meth:`AutoencoderDetector.fit`.
EpochCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class FitHistory:
    """Per-epoch losses of one :meth:`AutoencoderDetector.fit` call."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs_run: int = 0

    @classmethod
    def from_keras(cls, history: dict[str, list[Any]]) -> FitHistory:
        """From a Keras ``History.history`` dict."""
        loss = [float(v) for v in history.get("loss", [])]
        val_loss = [float(v) for v in history.get("val_loss", [])]
        return cls(loss=loss, val_loss=val_loss, epochs_run=len(loss))


def _with_noise(z: np.ndarray, noise_factor: float, seed: int) -> np.ndarray:
    """Denoising inputs: ``z`` plus seeded Gaussian noise, clipped to [0, 1] (0: ``z`` itself)."""
    if noise_factor <= 0:
        return z
    noise = np.random.default_rng(seed).standard_normal(z.shape).astype(np.float32)
    return np.clip(z + np.float32(noise_factor) * noise, 0.0, 1.0)


def _callbacks(opts: FitOptions, on_epoch: EpochCallback | None) -> list[Any]:
    """The Keras callbacks of one fit: early stopping, and the ``on_epoch`` report."""
    import keras

    callbacks: list[Any] = []
    if opts.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=int(opts.early_stopping_patience),
                restore_best_weights=True,
            )
        )
    if on_epoch is not None:
        report = on_epoch

        def epoch_end(epoch: int, logs: dict[str, Any] | None) -> None:
            report(epoch + 1, opts.epochs, {k: float(v) for k, v in (logs or {}).items()})

        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=epoch_end))
    return callbacks


class AutoencoderDetector:
    """Reconstruction-error anomaly scorer around a Keras autoencoder.

    ``score`` is side-effect free: it validates, normalises, reconstructs and returns the
    per-window mean absolute error. Deciding what is anomalous is the job of a separate
    :class:`detector.threshold.Threshold`.

    Parameters
    ----------
    kind : str, default "dense"
        Model kind (see :func:`detector.models.build_model`).
    params : dict, optional
        Architecture parameters overriding the kind's defaults.
    window_length : int, default 140
        Samples per window.
    score_smoothing : float, default 0
        Standard deviation, in samples, of a Gaussian low-pass applied to each window's
        residual (reconstruction − input) before its mean absolute value is taken. 0 is the
        plain MAE (the seed). A few samples (the ``recommended`` preset uses 2) stop
        high-frequency noise on a normal beat from counting as shape error; see
        ``docs/model-quality.md``.
    noise_discount : float, default 0
        Divide each smoothed MAE by ``1 + noise_discount * noise / noise_reference`` (the
        beat's own high-frequency level relative to the fitted normal beats'; see
        :mod:`detector.scoring`). Needs ``score_smoothing`` > 0; 0 is off.
    normalisation : {"minmax_global", "zscore_window"}
        How raw windows become model input (:mod:`detector.normalise`): the seed's global
        min–max, or each window z-normalised on its own (any linear units).
    align : AlignmentGrid, optional
        With ``zscore_window``: warp each window to the shift/stretch of this grid that best
        matches the mean fitted beat (:mod:`detector.align`).
    align_gate : AlignmentGate, optional
        With ``align``: score a window as aligned only when the model agrees
        (:mod:`detector.gate`). Its levels are set by :meth:`fit`.
    length_search : LengthSearch, optional
        With ``align``: also score each window as if its beat's length had been misjudged,
        and keep a length the model finds ``gain`` times more normal
        (:mod:`detector.length`). Its ``floor`` is set by :meth:`fit`.
    """

    def __init__(
        self,
        kind: str = "dense",
        params: dict[str, Any] | None = None,
        window_length: int = WINDOW_LENGTH,
        score_smoothing: float = 0.0,
        noise_discount: float = 0.0,
        noise_reference: float | None = None,
        normalisation: str = "minmax_global",
        align: AlignmentGrid | None = None,
        align_gate: AlignmentGate | None = None,
        length_search: LengthSearch | None = None,
    ) -> None:
        self.kind = kind
        self.params = {**default_params(kind), **(params or {})}
        self.window_length = int(window_length)
        self.score_smoothing = check_score_smoothing(score_smoothing, self.window_length)
        self.noise_discount = check_noise_discount(noise_discount, self.score_smoothing)
        #: Median :func:`detector.scoring.noise_level` of the fitted normal beats (set by
        #: :meth:`fit` when ``score_smoothing`` > 0, or loaded with an artifact).
        self.noise_reference = noise_reference
        if normalisation not in NORMALISATIONS:
            raise DetectorConfigError(
                f"normalisation: {normalisation!r} is not supported; choose one of "
                f"{sorted(NORMALISATIONS)}"
            )
        if align is not None and normalisation != "zscore_window":
            raise DetectorConfigError(
                f"align: needs normalisation 'zscore_window', not {normalisation!r} (the "
                "template is a z-normalised beat)"
            )
        self.normaliser: Normaliser = (
            WindowNormaliser(align) if normalisation == "zscore_window" else MinMaxNormaliser()
        )
        #: The alignment gate (:mod:`detector.gate`) and the length search
        #: (:mod:`detector.length`), or None.
        self.align_gate = align_gate
        self.length_search = length_search
        self.check_checks()
        self._model: Any = None
        # An artifact's Keras model is only deserialised when something needs it (a GPU, a
        # kind with no NumPy pass, training): importing Keras costs seconds and 500+ MiB.
        self._model_loader: Callable[[], Any] | None = None
        #: A Dense chain checked against Keras when its artifact was saved (or None).
        self._chain: Chain | None = None
        self._forward: Any = None
        #: ``keras`` or ``numpy``: the scoring backend, what computes the forward pass (see
        #: :meth:`use_backend`; not the Keras backend, ``KERAS_BACKEND``).
        self.backend = "keras"

    def check_checks(self) -> None:
        """Raise :class:`DetectorConfigError` when the alignment gate or the length search is
        set without alignment (they need the aligner's template and shift search)."""
        aligned = isinstance(self.normaliser, WindowNormaliser) and self.normaliser.align
        for name, value in (("align_gate", self.align_gate), ("length_search", self.length_search)):
            if value is not None and not aligned:
                raise DetectorConfigError(
                    f"{name}: needs normalisation 'zscore_window' with align (the mean normal "
                    "beat and the shift search); set model.align, e.g. max_shift: 6"
                )

    @property
    def model(self) -> Any:
        """The Keras model (deserialised on first use when it came from an artifact)."""
        if self._model is None and self._model_loader is not None:
            loader, self._model_loader = self._model_loader, None
            self._model = loader()
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        self._model, self._model_loader, self._chain = model, None, None

    @property
    def fitted(self) -> bool:
        """Whether there is a model (loaded, or waiting in its artifact)."""
        return self._model is not None or self._model_loader is not None

    def attach(self, loader: Callable[[], Any], chain: Chain | None) -> None:
        """Take a model from an artifact: ``loader()`` deserialises it when first needed;
        ``chain`` is the NumPy pass saved (already checked against Keras) with it."""
        self._model, self._model_loader, self._chain = None, loader, chain
        self._forward, self.backend = None, "keras"

    def numpy_chain(self) -> Chain | None:
        """The Dense chain the NumPy backend runs, checked against Keras; None when the
        model is no plain Dense chain (see :mod:`detector.fastpath`)."""
        if self._chain is None and self.fitted:
            from detector.fastpath import checked_chain

            self._chain = checked_chain(self.model, self.window_length)
        return self._chain

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        x_normal: np.ndarray,
        options: FitOptions | None = None,
        *,
        normaliser_data: np.ndarray | None = None,
        validation_data: np.ndarray | None = None,
        extra_normal: np.ndarray | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> FitHistory:
        """Fit the normaliser and train the autoencoder to reconstruct normal beats.

        Parameters
        ----------
        x_normal : ndarray, shape (n, window_length)
            Normal beats in original units.
        options : FitOptions, optional
            How to train (epochs, batch size, learning rate, seed, ...); default
            ``FitOptions()``.
        normaliser_data : ndarray, optional
            Data whose global min/max define the scaling (the seed uses the whole training
            split); defaults to ``x_normal``.
        validation_data : ndarray, optional
            Windows whose reconstruction loss is reported per epoch (and monitored when
            ``options.early_stopping_patience`` is set).
        extra_normal : ndarray, shape (k, window_length), optional
            More normal windows to train on (e.g. augmented copies of ``x_normal``); they do
            not enter the normalisation, the alignment template or the noise reference.
        on_epoch : callable, optional
            Called after every epoch as ``on_epoch(done, epochs, logs)``: epochs completed so
            far, ``options.epochs``, and that epoch's losses (``loss``, and ``val_loss`` with
            validation data) as floats. For progress display; it does not change training.
        """
        opts = FitOptions() if options is None else options
        x = validate_batch(x_normal, self.window_length)
        if len(x) == 0:
            raise DetectorConfigError("x_normal: no training windows given")
        if opts.early_stopping_patience is not None and validation_data is None:
            raise DetectorConfigError(
                "early_stopping_patience: needs validation_data (held-out normal beats)"
            )
        seed_everything(opts.seed)
        targets = self._fit_normaliser(x, normaliser_data, extra_normal)
        inputs = _with_noise(targets, opts.noise_factor, opts.seed)
        val = None
        if validation_data is not None:
            zv = self.normaliser.transform(validate_batch(validation_data, self.window_length))
            val = (zv, zv)
        self.model = self._compiled_model(opts, n_fit=len(x))
        hist = self.model.fit(
            inputs,
            targets,
            epochs=int(opts.epochs),
            batch_size=int(opts.batch_size),
            validation_data=val,
            shuffle=True,
            callbacks=_callbacks(opts, on_epoch),
            verbose=opts.verbose,
        )
        self._forward = None
        self.backend = "keras"
        if self.align_gate is not None or self.length_search is not None:
            fit_levels(self, x, self._forward_fn())
        return FitHistory.from_keras(hist.history)

    def with_checks(
        self,
        x_fit: np.ndarray,
        align_gate: AlignmentGate | None = None,
        length_search: LengthSearch | None = None,
    ) -> AutoencoderDetector:
        """A detector sharing this one's model and scoring with these checks, their levels
        fitted on the normal beats ``x_fit`` (None: without that check)."""
        other = self.with_scoring(self.score_smoothing, self.noise_discount)
        other.align_gate = None if align_gate is None else align_gate.unfitted()
        other.length_search = None if length_search is None else length_search.unfitted()
        other.check_checks()
        if other.align_gate is not None or other.length_search is not None:
            fit_levels(other, validate_batch(x_fit, self.window_length), other._forward_fn())
        return other

    def with_length_search(
        self, search: LengthSearch | None, x_fit: np.ndarray
    ) -> AutoencoderDetector:
        """:meth:`with_checks` keeping this detector's gate, with ``search``."""
        return self.with_checks(x_fit, self.align_gate, search)

    def _fit_normaliser(
        self,
        x: np.ndarray,
        normaliser_data: np.ndarray | None,
        extra_normal: np.ndarray | None,
    ) -> np.ndarray:
        """Fit the normaliser (and the noise reference); the normalised training targets."""
        scale_data = x if normaliser_data is None else validate_batch(normaliser_data)
        if isinstance(self.normaliser, WindowNormaliser):
            self.normaliser.fit(scale_data, template_data=x)
        else:
            self.normaliser.fit(scale_data)
        z = self.normaliser.transform_for_fit(x)
        self.noise_reference = None
        if self.score_smoothing > 0:
            self.noise_reference = float(np.median(noise_level(z, self.score_smoothing)))
        if extra_normal is not None and len(extra_normal):
            extra = validate_batch(extra_normal, self.window_length)
            z = np.concatenate([z, self.normaliser.transform_for_fit(extra)])
        return z

    def _compiled_model(self, opts: FitOptions, n_fit: int) -> Any:
        """A freshly built model of this detector's kind, compiled for ``opts`` (Adam, MAE)."""
        import keras

        model = build_model(self.kind, self.window_length, self.params)
        # One compiled call per epoch instead of one per batch: for these small networks the
        # per-step Python/graph overhead costs more than the arithmetic (the recommended
        # preset trains 1.7x faster: benchmarks/training.py); the weights are bit-identical.
        steps = opts.steps_per_execution
        if steps is None:
            steps = -(-n_fit // int(opts.batch_size))
        model.compile(
            optimizer=keras.optimizers.Adam(opts.learning_rate),
            loss="mae",
            steps_per_execution=int(steps),
        )
        return model

    def with_scoring(
        self, score_smoothing: float, noise_discount: float = 0.0
    ) -> AutoencoderDetector:
        """A detector sharing this one's model and normaliser that scores differently.

        Parameters
        ----------
        score_smoothing : float
            The other ``score_smoothing`` (0 = plain MAE).
        noise_discount : float
            The other ``noise_discount`` (0 = off). When > 0, ``score_smoothing`` must be
            this detector's: the noise reference was measured with it.
        """
        other = AutoencoderDetector(
            self.kind,
            self.params,
            self.window_length,
            score_smoothing=score_smoothing,
            noise_discount=noise_discount,
        )
        if noise_discount > 0 and score_smoothing != self.score_smoothing:
            raise DetectorConfigError(
                f"score_smoothing: {score_smoothing!r} differs from the fitted "
                f"{self.score_smoothing!r}, so its noise reference does not apply; refit with "
                "it or use noise_discount: 0"
            )
        other._model, other._model_loader, other._chain = (
            self._model,
            self._model_loader,
            self._chain,
        )
        # The forward pass does not depend on scoring: keep the backend chosen.
        other._forward, other.backend = self._forward, self.backend
        other.normaliser = self.normaliser
        other.noise_reference = self.noise_reference
        # The checks' levels are in this detector's score units: scoring differently drops
        # them (with_checks sets them again).
        return other

    def without_alignment(self) -> AutoencoderDetector:
        """A detector sharing this one's model that scores without the alignment step."""
        other = self.with_scoring(self.score_smoothing, self.noise_discount)
        if isinstance(self.normaliser, WindowNormaliser):
            other.normaliser = self.normaliser.without_alignment()
        return other

    # ------------------------------------------------------------------ scoring
    def use_backend(self, backend: str = "auto") -> str:
        """Choose what computes the forward pass; returns the scoring backend in use.

        Parameters
        ----------
        backend : {"auto", "numpy", "keras"}
            ``numpy``: a NumPy pass over the same weights (Dense chains only, checked
            against Keras to 1e-5 when built; see :mod:`detector.fastpath`). ``auto`` takes
            it when available. ``keras``: the Keras backend's compiled call (use it on a GPU).
        """
        if backend not in ("auto", "numpy", "keras"):
            raise DetectorConfigError(f"backend: {backend!r} must be auto, numpy or keras")
        if not self.fitted:
            raise NotFittedError("AutoencoderDetector: call fit() or load an artifact first")
        self._forward = None
        self.backend = "keras"
        if backend != "keras":
            from detector.fastpath import forward_of

            chain = self.numpy_chain()
            if chain is not None:
                self._forward, self.backend = forward_of(chain), "numpy"
            elif backend == "numpy":
                raise DetectorConfigError(
                    f"backend: 'numpy' needs a plain Dense chain; kind {self.kind!r} is not one"
                )
        return self.backend

    def _forward_fn(self) -> Any:
        """A compiled ``x -> reconstruction`` for the Keras backend in use (built once)."""
        if not self.fitted:
            raise NotFittedError("AutoencoderDetector: call fit() or load an artifact first")
        if self._forward is None:
            import keras

            model = self.model
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                spec = tf.TensorSpec([None, self.window_length], tf.float32)
                fn = tf.function(lambda t: model(t, training=False), input_signature=[spec])
                self._forward = lambda a: fn(a).numpy()
            else:
                self._forward = lambda a: keras.ops.convert_to_numpy(model(a, training=False))
        return self._forward

    def flat(self, windows: np.ndarray) -> np.ndarray:
        """Which windows are flat lines (a lead off, a saturated amplifier).

        :meth:`score` refuses them whatever the normalisation: a flat line has no beat shape,
        and a score for it would be a number about nothing.
        """
        return flat_rows(validate_batch(windows, self.window_length))

    def reconstruct(self, windows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Reconstructions of ``windows`` in normalised units, shape (n, window_length)."""
        x = validate_batch(windows, self.window_length)
        z = self.normaliser.transform(x)
        forward = self._forward_fn()
        out = [np.asarray(forward(z[i : i + batch_size])) for i in range(0, len(z), batch_size)]
        return np.concatenate(out) if out else np.empty_like(z)

    def score(self, windows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Per-window reconstruction MAE (in normalised units), shape (n,), float32.

        With ``score_smoothing`` > 0 the residual is low-passed first, and with
        ``noise_discount`` > 0 the result is divided by the beat's relative noise level (see
        the class and :mod:`detector.scoring`).

        Parameters
        ----------
        windows : array-like, shape (n, window_length) or (window_length,)
            Raw windows (original units).
        batch_size : int
            Windows per forward pass; bounds peak memory, not results.
        """
        x = validate_batch(windows, self.window_length)
        if len(x) == 0:
            return np.empty(0, dtype=np.float32)
        flat = flat_rows(x)  # x is validated already; flat() would validate it again
        if flat.any():
            row = int(np.flatnonzero(flat)[0])
            raise InvalidWindowError(
                FLAT_WINDOW, f"windows[{row}]: {flat_detail(x[row])} (flat() finds them)", row
            )
        forward = self._forward_fn()
        out = np.empty(len(x), dtype=np.float32)
        for i in range(0, len(x), batch_size):
            out[i : i + batch_size] = scores_of(self, x[i : i + batch_size], forward)
        return out
