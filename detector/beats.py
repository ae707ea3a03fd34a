"""Beats from a continuous ECG: R-peak detection, cutting and resampling (the beat recipe).

One :class:`BeatExtractor` per device segment turns a continuous signal, fed in chunks of any
length, into model-ready windows. Detection runs at fixed points of the segment's sample axis
(every ``hop_s``, on the newest ``span_s``), so the beats found do not depend on how the signal
was chunked: the stream stage (``ecgwatch ingest``) and the training path (WFDB records,
:func:`extract_beats`) get the same beats from the same signal.

A beat is the interval between two consecutive R peaks, moved back by ``pre_fraction`` of
that interval (ECG5000's beats start just before their R wave), resampled to ``window``
samples. The R peak is a downward deflection in ECG5000's lead, hence ``invert``. A lead whose
R waves point the other way (most bedside leads: ECG5000's points down) is turned over before
it is cut when ``match_polarity`` is on, so every window has the model's polarity. Figures
(detectors compared, the calibration of ``pre_fraction``, the polarity check): docs/continuous.md.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from detector.errors import DetectorConfigError
from detector.validation import WINDOW_LENGTH

__all__ = [
    "AHEAD_FACTOR",
    "BEAT_DETECTORS",
    "DEFAULT_RECIPE",
    "MAX_FS",
    "MIN_FS",
    "NOTCH_Q",
    "POLARITY_CHECK_S",
    "Beat",
    "BeatExtractor",
    "BeatRecipe",
    "Beats",
    "cut_beat",
    "detect_peaks",
    "extract_beats",
    "r_points_down",
]

#: QRS detectors a recipe may name: NeuroKit2's own method, or wfdb's XQRS.
BEAT_DETECTORS = ("neurokit", "xqrs")

#: Sampling rates a segment may have, Hz (below 20 Hz a QRS complex is one or two samples).
MIN_FS = 20.0
MAX_FS = 10_000.0

#: Shortest stretch of signal handed to a detector (shorter ones find nothing reliable).
_MIN_DETECT_S = 1.0

#: Seconds from a segment's start at which ``match_polarity`` decides, on everything since the
#: start, which way its R waves point. The segment's signal is kept until then, so the
#: decision does not depend on how the signal was chunked. Why one decision at 8 s:
#: docs/continuous.md.
POLARITY_CHECK_S = 8.0

#: Earlier looks at the polarity (seconds from the segment's start), which decide nothing:
#: while the latest says the R waves point the other way, beats are held back rather than
#: produced; the decision at :data:`POLARITY_CHECK_S` then cuts them again turned over, or
#: releases them as cut. A look that finds the segment the right way up is the last one
#: before the decision. So an upright lead produces no misshapen beat after its first 2 s
#: (unless the first look is wrong), and a lead of the model's polarity is held only when a
#: look is wrong (how often: docs/continuous.md).
POLARITY_LOOKS_S = (2.0, 4.0, 6.0)

#: How much deeper (from the local median) a later sample must be to take over a detected
#: peak (``refine_ahead_s``); chosen on validation signals: docs/continuous.md.
AHEAD_FACTOR = 2.0

#: Half-width of the stretch whose median is the baseline of those depths, seconds.
_AHEAD_BASE_S = 0.24

#: Quality factor of the mains notches (``powerline_hz``): about 1.7 Hz wide at 50 Hz.
NOTCH_Q = 30.0

#: Highest rate the polarity check runs at (faster signals are averaged down to it).
_POLARITY_FS = 250.0
#: Hop of the polarity check's 2 s windows, seconds.
_POLARITY_HOP_S = 0.25


#: The recipe's numeric settings (seconds, or a fraction of the RR interval).
_SECONDS_OR_FRACTIONS = (
    "pre_fraction",
    "refine_s",
    "refine_ahead_s",
    "min_rr_s",
    "max_rr_s",
    "span_s",
    "hop_s",
    "guard_s",
    "margin_s",
)


@dataclass(frozen=True)
class BeatRecipe:
    """How a continuous signal becomes windows; stored in ``detector.json``.

    Parameters
    ----------
    window : int
        Samples per produced window (the model's input length).
    detector : str
        QRS detector, one of :data:`BEAT_DETECTORS`.
    invert : bool
        Detect on the negated signal and refine to minima (R is a downward deflection).
    match_polarity : bool
        Turn over a segment whose R waves point the other way than ``invert`` says
        (NeuroKit2's ``ecg_invert`` check at :data:`POLARITY_CHECK_S`), so its windows have
        the model's polarity; off: the signal is cut as it comes.
    powerline_hz : tuple of float
        Mains frequencies (50 and/or 60 Hz) notched out of the signal before anything else
        (scipy ``iirnotch``, Q :data:`NOTCH_Q`, run causally with its state carried from chunk
        to chunk); a frequency at or above half the sampling rate is skipped. Empty: off.
    pre_fraction : float
        Where a beat starts before its R peak, as a fraction of its RR interval.
    refine_s : float
        Each detected peak moves to the most extreme sample within this many seconds.
    refine_ahead_s : float
        Then it moves on to a sample up to this many seconds later whose deflection (from
        the local median) is at least :data:`AHEAD_FACTOR` times its own: the detector took a
        steep T wave for the QRS, and the beat's R follows (0: off; recipes recorded before
        it existed load with 0).
    min_rr_s, max_rr_s : float
        Intervals outside this range produce no window (a missed or spurious peak).
    span_s, hop_s : float
        Each detection pass looks at the newest ``span_s`` seconds, every ``hop_s``.
    guard_s : float
        Peaks closer than this to the end of a pass wait for the next pass.
    margin_s : float
        Peaks closer than this to the start of a pass (not of the segment) are ignored.
    """

    window: int = WINDOW_LENGTH
    detector: str = "neurokit"
    invert: bool = True
    match_polarity: bool = True
    powerline_hz: tuple[float, ...] = ()
    pre_fraction: float = 0.021
    refine_s: float = 0.04
    refine_ahead_s: float = 0.2
    min_rr_s: float = 0.25
    max_rr_s: float = 2.0
    span_s: float = 4.0
    hop_s: float = 0.1
    guard_s: float = 0.3
    margin_s: float = 0.6

    def __post_init__(self) -> None:
        for name in _SECONDS_OR_FRACTIONS:  # before the range checks compare them
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DetectorConfigError(
                    f"beat_recipe.{name}: got {value!r} ({type(value).__name__}); use a number"
                )
        if self.detector not in BEAT_DETECTORS:
            raise DetectorConfigError(
                f"beat_recipe.detector: got {self.detector!r}; use one of {list(BEAT_DETECTORS)}"
            )
        if not isinstance(self.window, int) or self.window < 8:
            raise DetectorConfigError(
                f"beat_recipe.window: got {self.window!r}; use an integer >= 8"
            )
        for flag in ("invert", "match_polarity"):
            if not isinstance(getattr(self, flag), bool):
                raise DetectorConfigError(
                    f"beat_recipe.{flag}: got {getattr(self, flag)!r}; use true or false"
                )
        hz = self.powerline_hz
        if not isinstance(hz, tuple) or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and 10 <= f <= 1000 for f in hz
        ):
            raise DetectorConfigError(
                f"beat_recipe.powerline_hz: got {hz!r}; use a list of mains frequencies in Hz "
                "(10..1000), e.g. [50] or [50, 60], or [] for no notch"
            )
        if not 0.0 <= self.pre_fraction < 0.5:
            raise DetectorConfigError(
                f"beat_recipe.pre_fraction: got {self.pre_fraction!r}; use 0 <= value < 0.5"
            )
        if not 0 < self.min_rr_s < self.max_rr_s <= 5.0:
            raise DetectorConfigError(
                f"beat_recipe.min_rr_s/max_rr_s: got {self.min_rr_s!r}/{self.max_rr_s!r}; "
                "use 0 < min_rr_s < max_rr_s <= 5"
            )
        if not 0 < self.hop_s <= self.span_s - self.guard_s - self.margin_s:
            raise DetectorConfigError(
                f"beat_recipe.hop_s: got {self.hop_s!r}; use 0 < hop_s <= span_s - guard_s - "
                f"margin_s ({self.span_s - self.guard_s - self.margin_s:g}) so every peak is seen"
            )
        if self.span_s < max(_MIN_DETECT_S, self.max_rr_s) or self.span_s > 30:
            raise DetectorConfigError(
                f"beat_recipe.span_s: got {self.span_s!r}; use max(1, max_rr_s) <= span_s <= 30"
            )
        if not 0.0 <= self.refine_ahead_s <= 0.5 or self.refine_ahead_s >= self.guard_s + 0.2:
            raise DetectorConfigError(
                f"beat_recipe.refine_ahead_s: got {self.refine_ahead_s!r}; use 0..0.5 seconds, "
                "below guard_s + 0.2"
            )
        for name in ("refine_s", "guard_s", "margin_s"):
            value = getattr(self, name)
            if not 0 <= value <= 5.0:
                raise DetectorConfigError(f"beat_recipe.{name}: got {value!r}; use 0..5 seconds")

    def to_dict(self) -> dict[str, Any]:
        """The recipe as stored in ``detector.json`` (JSON types: the notches as a list)."""
        out = asdict(self)
        out["powerline_hz"] = list(self.powerline_hz)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeatRecipe:
        """Rebuild a recipe, naming any unknown key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DetectorConfigError(
                f"beat_recipe: unknown key(s) {unknown}; known: {sorted(known)}"
            )
        values = dict(data)
        # Recipes recorded before the forward refinement existed cut without it.
        values.setdefault("refine_ahead_s", 0.0)
        if isinstance(values.get("powerline_hz"), list):  # JSON and YAML give lists
            values["powerline_hz"] = tuple(values["powerline_hz"])
        return cls(**values)

    @classmethod
    def of_model(cls, metadata: dict[str, Any]) -> BeatRecipe:
        """The recipe a model's ``detector.json`` records; models written before recipes were
        recorded were all trained on ECG5000's cutting: :data:`DEFAULT_RECIPE`."""
        data = metadata.get("beat_recipe")
        return cls.from_dict(data) if isinstance(data, dict) else cls()


#: The recipe of ECG5000-trained models (calibration: docs/continuous.md).
DEFAULT_RECIPE = BeatRecipe()


def detect_peaks(signal: np.ndarray, fs: float, recipe: BeatRecipe = DEFAULT_RECIPE) -> np.ndarray:
    """R-peak sample indices of ``signal``, refined to the recipe's extreme sample.

    Parameters
    ----------
    signal : ndarray, shape (n,)
    fs : float
        Sampling rate in Hz.
    recipe : BeatRecipe

    Returns
    -------
    ndarray of int64, sorted, unique.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.size < int(_MIN_DETECT_S * fs) or not np.all(np.isfinite(x)):
        return np.zeros(0, dtype=np.int64)
    oriented = -x if recipe.invert else x
    raw = _run_detector(oriented, fs, recipe.detector)
    if raw.size == 0:
        return raw
    radius = round(recipe.refine_s * fs)
    peaks = _refine(oriented, raw, radius)
    ahead = round(recipe.refine_ahead_s * fs)
    return _refine_ahead(oriented, peaks, ahead, round(_AHEAD_BASE_S * fs)) if ahead else peaks


def r_points_down(signal: np.ndarray, fs: float, *, quick: bool = False) -> bool | None:
    """Whether the R waves of ``signal`` are downward deflections; None when it cannot tell
    (under 2 s, not finite, flat, a rate NeuroKit2's filters refuse).

    NeuroKit2's ``ecg_invert`` test: the signal cleaned by ``ecg_clean`` (high-pass, mains
    notch), then the sign of the largest deflection of each 2 s window, and the median of
    those signs. ``ecg_invert`` slides the window one sample at a time; here it hops
    :data:`_POLARITY_HOP_S`, which gives the same answer at a fraction of the cost (a stage
    checks every device's new segment, and devices often start together).

    ``quick``: a 0.5 Hz Butterworth high-pass (scipy) instead of ``ecg_clean``, about 5x
    cheaper and wrong somewhat more often; for the looks that decide nothing
    (:data:`POLARITY_LOOKS_S`).
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.size < int(2 * fs) or not np.all(np.isfinite(x)) or np.ptp(x) == 0:
        return None
    # A fast signal is brought down to at most _POLARITY_FS by block means first (an R wave
    # still spans several samples there; the filters cost less).
    step = max(1, math.ceil(fs / _POLARITY_FS))
    if step > 1:
        x = x[: x.size // step * step].reshape(-1, step).mean(axis=1)
        fs = fs / step
    clean = _high_passed(x, fs) if quick else _nk_clean(x, fs)
    if clean is None:
        return None
    clean -= clean.mean()
    width, hop = int(2 * fs), max(1, round(_POLARITY_HOP_S * fs))
    windows = np.lib.stride_tricks.sliding_window_view(clean, width)[::hop]
    if windows.shape[0] == 0 or not np.all(np.isfinite(clean)):
        return None
    extreme = windows[np.arange(windows.shape[0]), np.abs(windows).argmax(axis=1)]
    return bool(np.median(extreme) < 0)


def _nk_clean(x: np.ndarray, fs: float) -> np.ndarray | None:
    import neurokit2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.asarray(neurokit2.ecg_clean(x, sampling_rate=round(fs)), dtype=np.float64)
        except (ValueError, IndexError, ZeroDivisionError):
            return None


@functools.lru_cache(maxsize=32)
def _high_pass_sos(fs: float) -> np.ndarray:
    from scipy.signal import butter

    return np.asarray(butter(2, 0.5, "highpass", fs=fs, output="sos"))


def _high_passed(x: np.ndarray, fs: float) -> np.ndarray | None:
    from scipy.signal import sosfiltfilt

    try:
        return np.asarray(sosfiltfilt(_high_pass_sos(fs), x), dtype=np.float64)
    except ValueError:  # too short for the filter's padding
        return None


def _run_detector(x: np.ndarray, fs: float, name: str) -> np.ndarray:
    """Raw detections of one library detector (its warnings on short or odd stretches are
    expected here and not the user's concern)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "xqrs":
            import wfdb.processing

            peaks = wfdb.processing.xqrs_detect(x, fs=fs, verbose=False)
        else:
            import neurokit2

            try:
                info = neurokit2.ecg_findpeaks(x, sampling_rate=round(fs), method="neurokit")
            except (ValueError, IndexError):
                # NeuroKit2 raises on stretches with no candidate at all (a flat line).
                return np.zeros(0, dtype=np.int64)
            peaks = info["ECG_R_Peaks"]
    return np.asarray(peaks, dtype=np.int64)


def _refine(x: np.ndarray, peaks: np.ndarray, radius: int) -> np.ndarray:
    """Move each peak to the largest sample within ``radius`` (one vectorised gather)."""
    if radius <= 0:
        return np.unique(peaks)
    offsets = np.arange(-radius, radius + 1)
    idx = np.clip(peaks[:, None] + offsets[None, :], 0, x.size - 1)
    best = idx[np.arange(idx.shape[0]), np.argmax(x[idx], axis=1)]
    return np.unique(best.astype(np.int64))


def _refine_ahead(x: np.ndarray, peaks: np.ndarray, ahead: int, half: int) -> np.ndarray:
    """Move each peak to the largest of its next ``ahead`` samples when that one stands
    :data:`AHEAD_FACTOR` times higher above the median of the ``2 * half`` samples around
    the peak than the peak does (vectorised gathers; positions past the end repeat it)."""
    if peaks.size == 0:
        return peaks
    last = x.size - 1
    around = x[np.clip(peaks[:, None] + np.arange(-half, half + 1)[None, :], 0, last)]
    base = np.median(around, axis=1)
    idx = np.clip(peaks[:, None] + np.arange(1, ahead + 1)[None, :], 0, last)
    best = np.argmax(x[idx], axis=1)
    later = idx[np.arange(peaks.size), best]
    moves = x[later] - base > AHEAD_FACTOR * (x[peaks] - base)
    return np.unique(np.where(moves, later, peaks).astype(np.int64))


def cut_beat(
    signal: np.ndarray, start: float, rr: float, window: int = WINDOW_LENGTH
) -> np.ndarray:
    """Resample ``rr`` samples of ``signal`` from ``start`` (fractional) to ``window`` samples.

    Parameters
    ----------
    signal : ndarray, shape (n,)
    start : float
        Position of the beat's first sample (fractional); positions past the end of
        ``signal`` take its last sample.
    rr : float
        The beat's length in input samples.
    window : int

    Returns
    -------
    ndarray, shape (window,), float32
    """
    pos = start + np.arange(window, dtype=np.float64) * (rr / window)
    return np.interp(pos, np.arange(signal.size, dtype=np.float64), signal).astype(np.float32)


@dataclass(frozen=True)
class Beat:
    """One beat cut from a segment (positions in samples from the segment's start).

    Parameters
    ----------
    peak : int
        The R peak that starts the beat's interval.
    start, end : float
        The beat's first sample and the next beat's first sample (``end - start`` = RR).
    window : ndarray, shape (window,), float32
    """

    peak: int
    start: float
    end: float
    window: np.ndarray = field(repr=False)


class _Notches:
    """The recipe's mains notches, run causally with their state carried between calls, so a
    signal fed in chunks is filtered exactly as if fed whole."""

    def __init__(self, powerline_hz: tuple[float, ...], fs: float) -> None:
        self._filters: list[tuple[np.ndarray, np.ndarray]] = []
        self._state: list[np.ndarray] | None = None
        if any(f < fs / 2 for f in powerline_hz):
            from scipy.signal import iirnotch, lfilter, lfilter_zi

            self._filters = [iirnotch(f, NOTCH_Q, fs) for f in powerline_hz if f < fs / 2]
            self._lfilter, self._lfilter_zi = lfilter, lfilter_zi

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self._filters or x.size == 0:
            return x
        if self._state is None:  # start settled on the first sample: no step transient
            self._state = [self._lfilter_zi(b, a) * x[0] for b, a in self._filters]
        for i, (b, a) in enumerate(self._filters):
            x, self._state[i] = self._lfilter(b, a, x, zi=self._state[i])
        return np.asarray(x, dtype=np.float64)


class BeatExtractor:
    """Beats of one continuous segment, fed in chunks of any length.

    Parameters
    ----------
    fs : float
        Sampling rate of the segment, Hz.
    recipe : BeatRecipe
    """

    def __init__(self, fs: float, recipe: BeatRecipe = DEFAULT_RECIPE) -> None:
        if not (math.isfinite(fs) and MIN_FS <= fs <= MAX_FS):
            raise DetectorConfigError(f"fs: got {fs!r} Hz; use {MIN_FS:g}..{MAX_FS:g}")
        self.fs = float(fs)
        self.recipe = recipe
        self._span = round(recipe.span_s * fs)
        self._hop = max(1, round(recipe.hop_s * fs))
        self._guard = round(recipe.guard_s * fs)
        self._margin = round(recipe.margin_s * fs)
        self._min_rr = recipe.min_rr_s * fs
        self._max_rr = recipe.max_rr_s * fs
        self._buf = np.zeros(0, dtype=np.float64)
        self._base = 0
        self._next_pass = self._hop
        self.last_peak: int | None = None
        #: Intervals seen outside ``[min_rr_s, max_rr_s]`` (no window produced).
        self.rejected_intervals = 0
        #: +1, or -1 while the segment is turned over to the model's polarity.
        self._sign = 1.0
        #: Sample position of the polarity decision still to come (None: made, or off).
        self._decide_at = round(POLARITY_CHECK_S * fs) if recipe.match_polarity else None
        #: Sample positions of the looks still to come (:data:`POLARITY_LOOKS_S`).
        self._looks = [round(t * fs) for t in POLARITY_LOOKS_S] if recipe.match_polarity else []
        #: Beats held back while the latest look says the segment points the other way.
        self._held: list[Beat] | None = None
        #: End of the newest beat produced (a beat cut again after turning over ends later).
        self._produced_end = -math.inf
        self._notches = _Notches(recipe.powerline_hz, fs)

    @property
    def inverted(self) -> bool:
        """Whether the segment is being turned over (its R waves point the other way)."""
        return self._sign < 0

    @property
    def polarity_decided(self) -> bool:
        """Whether the polarity decision is made (always, with ``match_polarity`` off)."""
        return self._decide_at is None

    @property
    def received(self) -> int:
        """Samples fed since the segment started."""
        return self._base + self._buf.size

    @property
    def first_needed(self) -> int:
        """The oldest sample position a restarted extractor must be fed again from so that no
        beat is lost: enough before the newest peak to find it again, and the next pass's span."""
        if self._decide_at is not None:  # the decision looks at the segment from its start
            return 0
        keep = self._next_pass - self._span
        # A peak older than the longest interval can start no beat: keeping the signal since
        # then would let the buffer grow without bound while no beat is found (a lead off).
        if self.last_peak is not None and keep - self.last_peak <= self._max_rr:
            keep = min(keep, self.last_peak - self._margin - math.ceil(self._pre_max()))
        return max(0, keep)

    def feed(self, samples: np.ndarray) -> list[Beat]:
        """Append samples; return the beats they complete, oldest first."""
        chunk = self._notches(np.asarray(samples, dtype=np.float64).ravel()) * self._sign
        self._buf = np.concatenate([self._buf, chunk]) if self._buf.size else chunk.copy()
        beats: list[Beat] = []
        while self._next_pass <= self.received:
            if self._looks and self._next_pass >= self._looks[0]:
                self._look(self._looks.pop(0), beats)
            if self._decide_at is not None and self._next_pass >= self._decide_at:
                self._decide(self._decide_at, beats)
            self._detect(self._next_pass, beats if self._held is None else self._held)
            self._next_pass += self._hop
        self._trim()
        if beats:
            self._produced_end = beats[-1].end
        return beats

    def finish(self) -> list[Beat]:
        """The segment has ended (a gap, a changed rate, the end of a record): the beats still
        held back, after a polarity decision on everything received if none was made. Feed
        nothing after this."""
        beats: list[Beat] = []
        if self._decide_at is not None:
            self._decide(self.received, beats)
        return beats

    def _other_way(self, end: int, quick: bool = False) -> bool:
        """Whether the segment's first ``end`` samples point the other way than ``invert``
        (the buffer still starts at the segment's start, :attr:`first_needed`)."""
        down = r_points_down(self._buf[:end], self.fs, quick=quick)
        return down is not None and down != self.recipe.invert

    def _look(self, end: int, beats: list[Beat]) -> None:
        """Hold beats back from now on if the segment seems to point the other way; release
        the held ones if it no longer does. A segment that looks the right way up is not
        looked at again before the decision: devices often start together, and each look
        costs about as much as the decision."""
        if self._other_way(end, quick=True):
            self._held = [] if self._held is None else self._held
            return
        beats.extend(self._held or [])
        self._held, self._looks = None, []

    def _decide(self, end: int, beats: list[Beat]) -> None:
        """The polarity decision on the segment's first ``end`` samples: turn the segment over
        if it points the other way, and cut what was held back (or everything since the
        segment's start) again."""
        held, self._held = self._held, None
        flip = self._other_way(end)
        self._decide_at, self._looks = None, []
        if not flip:
            beats.extend(held or [])
            return
        self._sign = -self._sign
        np.negative(self._buf, out=self._buf)
        done = beats[-1].end if beats else self._produced_end
        # The passes made so far, again on the turned-over signal: the beats are then the ones
        # a segment turned over from its start would give, whatever the chunking. Intervals
        # they reject were counted once already.
        rejected, self.last_peak = self.rejected_intervals, None
        again: list[Beat] = []
        for end in range(self._hop, self._next_pass, self._hop):
            self._detect(end, again)
        self.rejected_intervals = rejected
        # Beats already produced stand; of the new cut, only those after them (an interval
        # overlapping a produced beat by a quarter or less still counts as after it).
        beats.extend(b for b in again if b.start >= done - 0.25 * (b.end - b.start))

    def _pre_max(self) -> float:
        return self.recipe.pre_fraction * self._max_rr + 1

    def _detect(self, end: int, beats: list[Beat]) -> None:
        begin = max(self._base, end - self._span)
        segment = self._buf[begin - self._base : end - self._base]
        peaks = detect_peaks(segment, self.fs, self.recipe) + begin
        low = begin + self._margin if begin > 0 else 0
        high = end - self._guard
        for p in peaks[(peaks >= low) & (peaks <= high)]:
            if self.last_peak is not None and p - self.last_peak < self._min_rr:
                continue
            self._accept(int(p), beats)

    def _accept(self, peak: int, beats: list[Beat]) -> None:
        previous, self.last_peak = self.last_peak, peak
        if previous is None:
            return
        rr = float(peak - previous)
        start = previous - self.recipe.pre_fraction * rr
        if rr > self._max_rr or start < self._base:
            self.rejected_intervals += 1
            return
        window = cut_beat(self._buf, start - self._base, rr, self.recipe.window)
        beats.append(Beat(peak=previous, start=start, end=start + rr, window=window))

    def _trim(self) -> None:
        drop = self.first_needed - self._base
        if drop > 0:
            self._buf = self._buf[drop:]
            self._base += drop


@dataclass(frozen=True)
class Beats:
    """Every beat of one record (positions in samples from its start)."""

    windows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    peaks: np.ndarray
    rejected_intervals: int
    #: Whether the record was turned over to the recipe's polarity (``match_polarity``).
    inverted: bool = False


def extract_beats(signal: np.ndarray, fs: float, recipe: BeatRecipe = DEFAULT_RECIPE) -> Beats:
    """All beats of a whole record, exactly as the stream stage would cut them.

    Parameters
    ----------
    signal : ndarray, shape (n,)
    fs : float
    recipe : BeatRecipe

    Returns
    -------
    Beats
    """
    extractor = BeatExtractor(fs, recipe)
    found = extractor.feed(np.asarray(signal, dtype=np.float64))
    found += extractor.finish()
    width = recipe.window
    return Beats(
        windows=np.stack([b.window for b in found]) if found else np.zeros((0, width), np.float32),
        starts=np.array([b.start for b in found], dtype=np.float64),
        ends=np.array([b.end for b in found], dtype=np.float64),
        peaks=np.array([b.peak for b in found], dtype=np.int64),
        rejected_intervals=extractor.rejected_intervals,
        inverted=extractor.inverted,
    )
