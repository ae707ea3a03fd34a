"""How raw windows become model input.

``minmax_global``: one min and one max over the training split, as in the seed.
``zscore_window``: each window z-normalised on its own (any linear units), optionally aligned
to a template beat, then one global min–max (:class:`WindowNormaliser`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.align import Aligner, AlignmentGrid
from detector.errors import DetectorConfigError, NotFittedError

__all__ = [
    "FLAT_RELATIVE_STD",
    "NORMALISATIONS",
    "MinMaxNormaliser",
    "Normaliser",
    "WindowNormaliser",
    "flat_detail",
    "flat_rows",
    "normaliser_from_dict",
    "zscore_rows",
]


@dataclass
class MinMaxNormaliser:
    """Scale values to ``[0, 1]`` with the global min and max of the data it was fitted on.

    Parameters
    ----------
    min_value, max_value : float or None
        The fitted parameters; ``None`` until :meth:`fit` is called.
    """

    min_value: float | None = None
    max_value: float | None = None

    def fit(self, x: np.ndarray) -> MinMaxNormaliser:
        """Learn the global min and max of ``x`` (any shape). Returns ``self``."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.size == 0 or not np.isfinite(arr).all():
            raise DetectorConfigError(
                f"x: need a non-empty, finite array to fit the normaliser, got shape {arr.shape}"
            )
        lo, hi = float(arr.min()), float(arr.max())
        if hi <= lo:
            raise DetectorConfigError(
                f"x: min ({lo}) equals max ({hi}); a constant training set cannot be scaled"
            )
        self.min_value, self.max_value = lo, hi
        return self

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_dict`) has set the parameters."""
        return self.min_value is not None and self.max_value is not None

    def _params(self) -> tuple[float, float]:
        if self.min_value is None or self.max_value is None:
            raise NotFittedError("MinMaxNormaliser: call fit() or load an artifact first")
        return self.min_value, self.max_value

    def transform_for_fit(self, x: np.ndarray) -> np.ndarray:
        """What the model is trained on: the same as :meth:`transform`."""
        return self.transform(x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Return ``(x - min) / (max - min)`` as float32 (values outside the fit range pass)."""
        lo, hi = self._params()
        arr = np.asarray(x, dtype=np.float32)
        return (arr - np.float32(lo)) / np.float32(hi - lo)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Map scaled values back to the original units."""
        lo, hi = self._params()
        return np.asarray(z, dtype=np.float32) * np.float32(hi - lo) + np.float32(lo)

    def to_dict(self) -> dict[str, Any]:
        """Parameters as stored in ``detector.json``."""
        lo, hi = self._params()
        return {"kind": "minmax_global", "min": lo, "max": hi}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinMaxNormaliser:
        """Rebuild a fitted normaliser from :meth:`to_dict` output."""
        if data.get("kind") != "minmax_global":
            raise DetectorConfigError(
                f"normalisation.kind: {data.get('kind')!r} is not supported; expected "
                "'minmax_global'"
            )
        lo, hi = float(data["min"]), float(data["max"])
        if not hi > lo:
            raise DetectorConfigError(f"normalisation: max ({hi}) must exceed min ({lo})")
        return cls(lo, hi)


#: A window is flat (no shape to score: a lead off, a saturated amplifier) when its standard
#: deviation is at most this fraction of its largest absolute sample. That is what float32
#: rounding leaves of a constant line in any units, so the test needs no unit.
FLAT_RELATIVE_STD = 1e-6


def flat_rows(x: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``x`` that are flat (see :data:`FLAT_RELATIVE_STD`)."""
    arr = np.asarray(x, dtype=np.float64)
    std = arr.std(axis=1)
    peak = np.abs(arr).max(axis=1)
    return np.asarray(std <= FLAT_RELATIVE_STD * peak, dtype=bool)


def flat_detail(window: np.ndarray) -> str:
    """The message a flat window is refused with (names the measured values and the fix)."""
    arr = np.asarray(window, dtype=np.float64)
    return (
        f"samples: a flat line (standard deviation {arr.std():.3g}, largest |sample| "
        f"{np.abs(arr).max():.3g}; flat means std <= {FLAT_RELATIVE_STD:g} x that) has no "
        "beat shape to score; check the lead and the amplifier"
    )


def zscore_rows(x: np.ndarray) -> np.ndarray:
    """Each row minus its mean, divided by its standard deviation (float32; flat rows -> 0)."""
    arr = np.asarray(x, dtype=np.float32)
    centred = arr - arr.mean(axis=1, keepdims=True)
    std = centred.std(axis=1, keepdims=True)
    return centred / np.where(std > 0, std, np.float32(1.0))


@dataclass
class WindowNormaliser:
    """Per-window z-normalisation, optional alignment, then one global min–max scaling.

    Each window is z-normalised on its own, so a producer may send samples in any linear
    units (offset and gain do not change the result; on ECG5000's beats, which are
    z-normalised, it is the identity). With ``align`` each window is then warped to the shift
    and stretch of a bounded grid that best matches the mean fitted beat
    (:class:`detector.align.Aligner`) and z-normalised again. The global min–max of the fitted
    result maps the beats to about [0, 1], the range of the autoencoders' sigmoid output.

    Parameters
    ----------
    align : AlignmentGrid, optional
        The search grid; ``None``: no alignment.
    """

    align: AlignmentGrid | None = None
    min_value: float | None = None
    max_value: float | None = None
    aligner: Aligner | None = field(default=None, repr=False)

    def _shape(self, x: np.ndarray, align: bool = True) -> np.ndarray:
        z = zscore_rows(x)
        if align and self.aligner is not None:
            z = zscore_rows(self.aligner.transform(z))
        return z

    def fit(self, x: np.ndarray, template_data: np.ndarray | None = None) -> WindowNormaliser:
        """Learn the template (when aligning) and the global min–max. Returns ``self``.

        Parameters
        ----------
        x : ndarray, shape (n, window_length)
            Windows whose normalised range sets the min–max.
        template_data : ndarray, optional
            Normal beats whose mean is the alignment template (default: ``x``).
        """
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 2 or len(arr) == 0 or not np.isfinite(arr).all():
            raise DetectorConfigError(
                f"x: need a non-empty, finite (n, window_length) array to fit the normaliser, "
                f"got shape {arr.shape}"
            )
        flat = flat_rows(arr)
        if flat.any():
            raise DetectorConfigError(
                f"x: {int(flat.sum())} flat training window(s) (first: row "
                f"{int(np.flatnonzero(flat)[0])}); remove them: a flat line has no beat shape"
            )
        self.aligner = None
        if self.align is not None:
            beats = arr if template_data is None else np.asarray(template_data, np.float32)
            self.aligner = Aligner(self.align).fit(zscore_rows(beats))
        z = self._shape(arr, align=False)
        self.min_value, self.max_value = float(z.min()), float(z.max())
        return self

    def transform_for_fit(self, x: np.ndarray) -> np.ndarray:
        """What the model is trained on: z-normalised and scaled, but *not* aligned.

        The normal beats' own small shifts and stretches teach the autoencoder to tolerate
        them; alignment at scoring time only has to undo a window cut grossly off. Aligning
        the training beats as well made the model less tolerant (``docs/model-quality.md``).
        """
        return self._scale(self._shape(x, align=False))

    def _scale(self, z: np.ndarray) -> np.ndarray:
        if self.min_value is None or self.max_value is None:
            raise NotFittedError("WindowNormaliser: call fit() or load an artifact first")
        lo, span = np.float32(self.min_value), np.float32(self.max_value - self.min_value)
        return (z - lo) / span

    def scale(self, z: np.ndarray) -> np.ndarray:
        """The global min–max step alone, for windows already z-normalised (and aligned)."""
        return self._scale(z)

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_dict`) has set the parameters."""
        return self.min_value is not None and self.max_value is not None

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Normalised (and aligned) windows, float32; flat rows come out constant."""
        if not self.fitted:
            raise NotFittedError("WindowNormaliser: call fit() or load an artifact first")
        return self._scale(self._shape(x))

    def without_alignment(self) -> WindowNormaliser:
        """The same scaling without the alignment step."""
        return WindowNormaliser(None, self.min_value, self.max_value)

    def to_dict(self) -> dict[str, Any]:
        """Parameters as stored in ``detector.json``."""
        if self.min_value is None or self.max_value is None:
            raise NotFittedError("WindowNormaliser: call fit() or load an artifact first")
        out: dict[str, Any] = {
            "kind": "zscore_window",
            "min": self.min_value,
            "max": self.max_value,
            "flat_relative_std": FLAT_RELATIVE_STD,
        }
        if self.aligner is not None and self.aligner.template is not None:
            out["align"] = {
                **self.aligner.grid.to_dict(),
                "template": [float(v) for v in self.aligner.template],
            }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowNormaliser:
        """Rebuild a fitted normaliser from :meth:`to_dict` output."""
        lo, hi = float(data["min"]), float(data["max"])
        if not hi > lo:
            raise DetectorConfigError(f"normalisation: max ({hi}) must exceed min ({lo})")
        out = cls(None, lo, hi)
        spec = data.get("align")
        if spec is not None:
            grid = AlignmentGrid(
                int(spec["max_shift"]),
                float(spec["max_stretch"]),
                int(spec["scale_steps"]),
                float(spec.get("margin", 0.0)),
            )
            aligner = Aligner(grid)
            aligner.set_template(np.asarray(spec["template"], dtype=np.float32))
            out.align, out.aligner = grid, aligner
        return out


Normaliser = MinMaxNormaliser | WindowNormaliser

#: ``normalisation.kind`` values and what reads them.
NORMALISATIONS: dict[str, Any] = {
    "minmax_global": MinMaxNormaliser,
    "zscore_window": WindowNormaliser,
}


def normaliser_from_dict(data: dict[str, Any]) -> Normaliser:
    """The fitted normaliser ``detector.json``'s ``normalisation`` describes.

    Raises
    ------
    DetectorConfigError
        For an unknown ``kind``, naming the supported ones.
    """
    kind = data.get("kind")
    if kind not in NORMALISATIONS:
        raise DetectorConfigError(
            f"normalisation.kind: {kind!r} is not supported; expected one of "
            f"{sorted(NORMALISATIONS)}"
        )
    result: Normaliser = NORMALISATIONS[kind].from_dict(data)
    return result
