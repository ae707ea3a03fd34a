"""Versioned model artifacts: ``model.keras`` + ``detector.json`` + ``report/`` + ``SHA256SUMS``.

Writes are atomic (everything goes to a hidden temporary folder beside the target, which is
renamed into place last), and loading verifies every checksum and the metadata schema before
the model is deserialised (with Keras safe mode on: no pickle, no lambdas).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from detector.autoencoder import AutoencoderDetector
from detector.beats import BeatRecipe
from detector.drift import DriftReference
from detector.errors import (
    ArtifactError,
    ChecksumMismatchError,
    DetectorConfigError,
    IncompatibleArtifactError,
    MissingArtifactFileError,
)
from detector.fastpath import Chain, chain_bytes, load_chain
from detector.gate import AlignmentGate
from detector.length import LengthSearch
from detector.normalise import normaliser_from_dict
from detector.threshold import Threshold

__all__ = [
    "SCHEMA_VERSION",
    "Artifact",
    "Prediction",
    "carries_numpy_pass",
    "library_versions",
    "sha256_file",
    "write_checksums",
]


class Prediction(NamedTuple):
    """Scores and decisions of one batch (river's split: a score, then a decision on it)."""

    #: Reconstruction error per window, float32.
    scores: np.ndarray
    #: ``score > threshold`` per window (the threshold's own comparison, in float64).
    anomalous: np.ndarray


#: Version of the ``detector.json`` layout this code writes and reads.
SCHEMA_VERSION = 1
MODEL_FILE = "model.keras"
#: The NumPy pass of a Dense-chain model, checked against Keras at save (``detector.fastpath``).
FORWARD_FILE = "forward.npz"
META_FILE = "detector.json"
SUMS_FILE = "SHA256SUMS"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in ("keras", "tensorflow", "numpy", "scikit-learn", "ecgwatch"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def write_checksums(folder: Path) -> None:
    """Write ``SHA256SUMS`` (``sha256sum -c`` format) for every file under ``folder``."""
    lines = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != SUMS_FILE:
            lines.append(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n")
    _write_synced(folder / SUMS_FILE, "".join(lines).encode())


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _schema() -> dict[str, Any]:
    text = resources.files("detector").joinpath("schemas/detector.schema.json").read_text()
    return dict(json.loads(text))


def _read_sums(root: Path) -> dict[str, str]:
    """``SHA256SUMS`` of an artifact folder as ``{relative name: hex digest}``."""
    sums = root / SUMS_FILE
    if not sums.is_file():
        raise MissingArtifactFileError(str(sums), "missing; the artifact is incomplete")
    listed: dict[str, str] = {}
    for n, line in enumerate(sums.read_text(errors="replace").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise IncompatibleArtifactError(str(sums), f"line {n} is malformed: {line!r}")
        listed[name] = digest
    for required in (MODEL_FILE, META_FILE):
        if not (root / required).is_file():
            raise MissingArtifactFileError(str(root / required), "missing from the artifact")
        if required not in listed:
            raise IncompatibleArtifactError(
                str(sums), f"has no checksum for {required}; the file list is truncated"
            )
    return listed


def _check_sums(root: Path, listed: dict[str, str]) -> None:
    """Every listed file exists and has its listed checksum."""
    for name, digest in listed.items():
        f = root / name
        if not f.is_file():
            raise MissingArtifactFileError(str(f), "listed in SHA256SUMS but missing")
        actual = sha256_file(f)
        if actual != digest:
            raise ChecksumMismatchError(
                str(f),
                f"checksum mismatch: SHA256SUMS says {digest[:12]}…, file has "
                f"{actual[:12]}…; the file was modified or truncated",
            )


def _read_metadata(root: Path) -> dict[str, Any]:
    """``detector.json``, parsed and checked against the schema and its version."""
    import jsonschema

    meta_path = root / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IncompatibleArtifactError(str(meta_path), f"not valid JSON: {exc}") from exc
    try:
        jsonschema.validate(meta, _schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise IncompatibleArtifactError(
            str(meta_path), f"fails the schema at {where}: {exc.message}"
        ) from exc
    if meta["schema_version"] != SCHEMA_VERSION:
        raise IncompatibleArtifactError(
            str(meta_path),
            f"schema_version {meta['schema_version']} is not supported (this ecgwatch "
            f"reads {SCHEMA_VERSION}); retrain or upgrade ecgwatch",
        )
    return dict(meta)


@dataclass
class Artifact:
    """A fitted detector together with its threshold and metadata.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted scorer (model + normaliser).
    threshold : Threshold
        Decision threshold for the detector's scores.
    metadata : dict
        Everything else recorded in ``detector.json`` (model_version, metrics, config,
        training data hash, seed, ...).
    path : Path or None
        Where the artifact was loaded from or saved to.
    """

    detector: AutoencoderDetector
    threshold: Threshold
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def version(self) -> str:
        """The model version string."""
        return str(self.metadata.get("model_version", "unversioned"))

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Shortcut for ``detector.score``."""
        return self.detector.score(windows)

    @property
    def drift_reference(self) -> DriftReference | None:
        """What scores and inputs looked like on the training split (``None``: not stored)."""
        data = self.metadata.get("drift_reference")
        return DriftReference.from_dict(data) if isinstance(data, dict) else None

    @property
    def beat_recipe(self) -> BeatRecipe:
        """How a continuous signal is cut into this model's windows (artifacts written before
        recipes were recorded were all trained on ECG5000's cutting: the default recipe)."""
        return BeatRecipe.of_model(self.metadata)

    def predict(self, windows: np.ndarray) -> Prediction:
        """Score ``windows`` and decide: :class:`Prediction` (scores, anomalous).

        The decision is :meth:`Threshold.classify` on the float64 scores, so it is the same
        test a consumer of the float64 score records would make.
        """
        scores = self.detector.score(windows)
        return Prediction(scores, self.threshold.classify(np.asarray(scores, dtype=np.float64)))

    def flat(self, windows: np.ndarray) -> np.ndarray:
        """Shortcut for ``detector.flat``: windows the detector refuses to score."""
        return self.detector.flat(windows)

    def _scoring_meta(self) -> dict[str, Any]:
        # Written only when the discount / search is on, so artifacts without them look as
        # before.
        det = self.detector
        out: dict[str, Any] = {}
        if det.noise_discount > 0:
            out = {"noise_discount": det.noise_discount, "noise_reference": det.noise_reference}
        if det.align_gate is not None:
            out["align_gate"] = det.align_gate.to_dict()
        if det.length_search is not None:
            out["length_search"] = det.length_search.to_dict()
        return out

    def to_metadata(self) -> dict[str, Any]:
        """The full ``detector.json`` content."""
        meta = {
            "schema_version": SCHEMA_VERSION,
            "model_version": self.version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "metrics": {},
            "training_data": {"sha256": "0" * 64},
            "config": {},
            "seed": 0,
        }
        meta.update(self.metadata)
        meta.update(
            {
                "schema_version": SCHEMA_VERSION,
                "window_length": self.detector.window_length,
                "model": {
                    "kind": self.detector.kind,
                    "params": self.detector.params,
                    "score_smoothing": self.detector.score_smoothing,
                    **self._scoring_meta(),
                    "file": MODEL_FILE,
                },
                "normalisation": self.detector.normaliser.to_dict(),
                "threshold": self.threshold.to_dict(),
                "library_versions": library_versions(),
            }
        )
        return meta

    # ------------------------------------------------------------------ save
    def save(self, path: str | os.PathLike[str], report_dir: Path | None = None) -> Path:
        """Write the artifact atomically to ``path`` (which must not exist yet).

        Parameters
        ----------
        path : path-like
            Target folder.
        report_dir : Path, optional
            A folder copied in as ``report/``.

        Returns
        -------
        Path
            The final folder.
        """
        if not self.detector.fitted:
            raise ArtifactError(str(path), "the detector is not fitted; call fit() first")
        target = Path(path)
        if target.exists():
            raise ArtifactError(
                str(target), "already exists; artifacts are immutable, pick a new version"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            self.detector.model.save(tmp / MODEL_FILE)
            chain = self.detector.numpy_chain()
            if chain is not None:
                _write_synced(tmp / FORWARD_FILE, chain_bytes(chain))
            meta = self.to_metadata()
            _write_synced(tmp / META_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
            if report_dir is not None:
                shutil.copytree(report_dir, tmp / "report")
            write_checksums(tmp)
            os.rename(tmp, target)  # atomic on one filesystem: readers see all or nothing
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.path = target
        self.metadata = meta
        return target

    # ------------------------------------------------------------------ load
    @classmethod
    def verify(cls, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Check checksums and metadata schema without loading the model.

        Returns
        -------
        dict
            The parsed ``detector.json``.

        Raises
        ------
        MissingArtifactFileError, ChecksumMismatchError, IncompatibleArtifactError
        """
        return _verified(Path(path))[0]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Artifact:
        """Verify and load an artifact folder.

        Raises
        ------
        ArtifactError
            Subclass naming the file and what is wrong.
        """
        root = Path(path)
        meta, listed = _verified(root)
        model_meta = meta["model"]
        try:
            det = AutoencoderDetector(
                kind=model_meta["kind"],
                params=model_meta["params"],
                window_length=meta["window_length"],
                # Absent in artifacts written before the options existed: plain MAE.
                score_smoothing=model_meta.get("score_smoothing", 0.0),
                noise_discount=model_meta.get("noise_discount", 0.0),
                noise_reference=model_meta.get("noise_reference"),
            )
            if det.noise_discount > 0 and not (det.noise_reference or 0) > 0:
                raise DetectorConfigError(
                    f"noise_reference: {det.noise_reference!r}; noise_discount "
                    f"{det.noise_discount:g} needs the positive median noise level of the "
                    "fitted beats (re-save the artifact from a fitted detector)"
                )
        except DetectorConfigError as exc:
            raise IncompatibleArtifactError(str(root / META_FILE), str(exc)) from exc
        chain = _read_chain(root, listed, det.window_length)
        det.attach(lambda: _load_keras_model(root, det.window_length), chain)
        if chain is None:  # no NumPy pass saved: deserialise now, so a bad file fails here
            det.model  # noqa: B018
        try:
            det.normaliser = normaliser_from_dict(meta["normalisation"])
        except (DetectorConfigError, KeyError, TypeError, ValueError) as exc:
            raise IncompatibleArtifactError(
                str(root / META_FILE), f"normalisation cannot be used: {exc}"
            ) from exc
        _attach_checks(root, det, model_meta)
        artifact = cls(det, Threshold.from_dict(meta["threshold"]), meta, root)
        try:
            artifact.beat_recipe  # noqa: B018 - validated at load, not at the first chunk
        except (DetectorConfigError, TypeError) as exc:
            raise IncompatibleArtifactError(
                str(root / META_FILE), f"beat_recipe cannot be used: {exc}"
            ) from exc
        return artifact


def _attach_checks(root: Path, det: AutoencoderDetector, model_meta: dict[str, Any]) -> None:
    """Set ``det``'s alignment gate and length search from ``model.align_gate`` and
    ``model.length_search`` (absent: none)."""
    for name, cls in (("align_gate", AlignmentGate), ("length_search", LengthSearch)):
        spec = model_meta.get(name)
        if spec is None:
            continue
        try:
            setattr(det, name, cls.from_dict(spec))
            det.check_checks()
        except (DetectorConfigError, KeyError, TypeError, ValueError) as exc:
            raise IncompatibleArtifactError(
                str(root / META_FILE), f"{name} cannot be used: {exc}"
            ) from exc


def _verified(root: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """``detector.json`` and the checksummed file list, after checking every checksum."""
    if not root.is_dir():
        raise MissingArtifactFileError(
            str(root),
            "no such artifact folder; train one with `ecgwatch train` or check --model/--registry",
        )
    listed = _read_sums(root)
    _check_sums(root, listed)
    return _read_metadata(root), listed


def carries_numpy_pass(path: str | os.PathLike[str]) -> bool:
    """Whether the artifact folder lists a NumPy forward pass (``forward.npz``) in its
    checksums: then a CPU scorer needs no Keras. A cheap look, nothing is verified (loading
    does that); an unreadable folder gives False.

    Parameters
    ----------
    path : path-like
        An artifact folder (a registry version).
    """
    try:
        return FORWARD_FILE in _read_sums(Path(path))
    except (OSError, ArtifactError):
        return False


def _read_chain(root: Path, listed: dict[str, str], window_length: int) -> Chain | None:
    """The artifact's saved NumPy pass, or None (absent: written before it existed, or the
    model is no Dense chain). Only a checksummed file is trusted."""
    if FORWARD_FILE not in listed:
        return None
    try:
        return load_chain(root / FORWARD_FILE, window_length)
    except ValueError as exc:
        raise IncompatibleArtifactError(str(root / FORWARD_FILE), str(exc)) from exc


def _load_keras_model(root: Path, window_length: int) -> Any:
    """Deserialise ``model.keras`` (Keras safe mode) and check its input width."""
    import keras

    from detector.models import custom_objects

    try:
        model = keras.saving.load_model(
            root / MODEL_FILE, custom_objects=custom_objects(), compile=False, safe_mode=True
        )
    except Exception as exc:  # Keras raises many types for a corrupt/unsafe file
        raise IncompatibleArtifactError(
            str(root / MODEL_FILE), f"cannot be loaded by Keras: {exc}"
        ) from exc
    shape = tuple(model.input_shape)
    if shape[-1] != window_length:
        raise IncompatibleArtifactError(
            str(root / MODEL_FILE),
            f"model input shape {shape} does not match window_length {window_length}",
        )
    return model
