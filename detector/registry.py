"""A folder of immutable model versions plus a ``latest`` pointer.

Layout::

    registry/
      20261126T101500Z-3f2a9c1d/   (an Artifact folder)
      latest -> 20261126T101500Z-3f2a9c1d
      latest.history               (one JSON line per move of ``latest``, oldest first)

Workers that serve ``latest`` follow its moves while running (``pipeline.rollout``):
:meth:`ModelRegistry.promote` and :meth:`ModelRegistry.rollback` move it atomically, and only
to a version that verifies.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from detector.artifact import Artifact
from detector.errors import RegistryError

__all__ = ["HISTORY_FILE", "LATEST", "ModelRegistry"]

LATEST = "latest"
#: Every move of ``latest``, one JSON object per line: ``{"version", "at", "action"}``.
HISTORY_FILE = "latest.history"


class ModelRegistry:
    """Versions of published artifacts under one root folder.

    Parameters
    ----------
    root : path-like
        Registry folder (created on first publish).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        """Published version names, oldest first (names sort by creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        )

    def new_version(self) -> str:
        """A fresh, sortable, unique version name (UTC timestamp + random suffix)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}-{uuid.uuid4().hex[:8]}"

    def publish(
        self, artifact: Artifact, report_dir: Path | None = None, version: str | None = None
    ) -> Path:
        """Save ``artifact`` as a new version, verify it, then point ``latest`` at it."""
        version = version or self.new_version()
        artifact.metadata["model_version"] = version
        path = artifact.save(self.root / version, report_dir=report_dir)
        Artifact.verify(path)  # only a good version becomes latest
        self._point_latest(version, "publish")
        return path

    def current(self) -> str | None:
        """The version ``latest`` points to (``None`` before the first publish)."""
        link = self.root / LATEST
        return os.readlink(link) if link.is_symlink() else None

    def promote(self, version: str) -> str:
        """Verify ``version`` (checksums, schema) and point ``latest`` at it; returns it.

        Raises
        ------
        RegistryError
            If ``version`` is not the name of a version folder of this registry (``latest``
            itself, a path, ``..``: ``latest`` must only ever name a version here).
        ArtifactError
            If it does not verify (``latest`` is left where it was).
        """
        versions = self.versions()
        if version not in versions:
            now = self.current()
            hint = f" ('latest' points at {now} now)" if version == LATEST and now else ""
            raise RegistryError(
                f"{self.root}: version {version!r} is not in the registry{hint}; promote "
                f"takes the name of one of its version folders: {versions or 'none'}"
            )
        Artifact.verify(self.resolve(version))
        self._point_latest(version, "promote")
        return version

    def rollback(self) -> str:
        """Point ``latest`` back at the version it pointed to before its current one.

        The previous version comes from ``latest.history`` (the newest entry naming another
        version that still exists); without a history, the newest version older than the
        current one. It is verified before ``latest`` moves.

        Raises
        ------
        RegistryError
            When there is nothing to roll back to.
        """
        now = self.current()
        if now is None:
            raise RegistryError(f"{self.root}: nothing to roll back: no 'latest' yet")
        target = self._previous(now)
        if target is None:
            raise RegistryError(
                f"{self.root}: nothing to roll back to: {now} is the only (or oldest) version"
            )
        Artifact.verify(self.resolve(target))
        self._point_latest(target, "rollback")
        return target

    def history(self) -> list[dict[str, object]]:
        """The moves of ``latest``, oldest first (unreadable lines are skipped)."""
        path = self.root / HISTORY_FILE
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                out.append(entry)
        return out

    def _previous(self, now: str) -> str | None:
        existing = set(self.versions())
        moves = [str(e["version"]) for e in self.history()]
        # Walk back past the current version's own entries (and repeats of it).
        while moves and moves[-1] == now:
            moves.pop()
        for version in reversed(moves):
            if version != now and version in existing:
                return version
        older = [v for v in sorted(existing) if v < now]
        return older[-1] if older else None

    def _point_latest(self, version: str, action: str) -> None:
        link = self.root / LATEST
        tmp = self.root / f".{LATEST}-{uuid.uuid4().hex[:8]}"
        os.symlink(version, tmp)
        os.replace(tmp, link)  # atomic swap of the pointer
        entry = json.dumps({"version": version, "at": time.time(), "action": action})
        # One short O_APPEND write per move: lines from concurrent movers do not interleave.
        fd = os.open(self.root / HISTORY_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (entry + "\n").encode())
        finally:
            os.close(fd)

    def resolve(self, version: str = LATEST) -> Path:
        """Folder of ``version`` (default: the one ``latest`` points to)."""
        if version == LATEST:
            link = self.root / LATEST
            if not link.exists():
                raise RegistryError(
                    f"{self.root}: the registry has no published model (no 'latest'); run "
                    "`ecgwatch train --registry "
                    f"{self.root}` first"
                )
            return self.root / os.readlink(link)
        path = self.root / version
        if not path.is_dir():
            raise RegistryError(
                f"{path}: version {version!r} is not in the registry; available: "
                f"{self.versions() or 'none'}"
            )
        return path

    def load(self, version: str = LATEST) -> Artifact:
        """Verify and load a version (default: ``latest``)."""
        return Artifact.load(self.resolve(version))
