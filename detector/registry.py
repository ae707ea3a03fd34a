"""A folder of immutable model versions plus a ``latest`` pointer.

Layout::

    registry/
      20261126T101500Z-3f2a9c1d/   (an Artifact folder)
      latest -> 20261126T101500Z-3f2a9c1d
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from detector.artifact import Artifact
from detector.errors import RegistryError

__all__ = ["LATEST", "ModelRegistry"]

LATEST = "latest"


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
        self._point_latest(version)
        return path

    def _point_latest(self, version: str) -> None:
        link = self.root / LATEST
        tmp = self.root / f".{LATEST}-{uuid.uuid4().hex[:8]}"
        os.symlink(version, tmp)
        os.replace(tmp, link)  # atomic swap of the pointer

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
