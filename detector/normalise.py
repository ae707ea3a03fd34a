"""Global min–max normalisation, as in the seed (one min and one max over the training split)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError, NotFittedError

__all__ = ["MinMaxNormaliser"]


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
