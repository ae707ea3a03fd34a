"""Editing an artifact's ``detector.json`` in tests: a consistent artifact (checksums
rewritten) whose metadata says something the loader must refuse."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from detector.artifact import write_checksums

__all__ = ["rewrite_metadata"]


def rewrite_metadata(folder: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Apply ``change`` to ``folder``'s parsed ``detector.json``, write it back and rewrite
    the checksums."""
    path = folder / "detector.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    write_checksums(folder)
