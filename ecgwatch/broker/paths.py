"""Where the broker tooling keeps Kafka's jars and the broker's data.

From an ecgwatch checkout (``pyproject.toml`` and ``deploy/`` next to the package), both stay in
the checkout, git-ignored: jars in ``deploy/kafka/lib/``, data in ``.ecgwatch/kafka/``. Installed
normally (a wheel in site-packages) nothing is written next to the code: jars go to the per-user
cache directory and broker data to the per-user data directory (XDG base directories). An
environment variable overrides each.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV",
    "KAFKA_DIR_ENV",
    "checkout_root",
    "default_data_dir",
    "kafka_dir",
    "user_cache_dir",
    "user_data_dir",
]

#: Overrides the folder of the jars (``lib/``) and the copy of the pom Maven runs on.
KAFKA_DIR_ENV = "ECGWATCH_KAFKA_DIR"
#: Overrides the default data directory of ``ecgwatch broker start|stop|status``.
DATA_DIR_ENV = "ECGWATCH_BROKER_DATA_DIR"

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def checkout_root(package_root: Path | None = None) -> Path | None:
    """The ecgwatch checkout this package runs from, or None when it is installed.

    Parameters
    ----------
    package_root : Path, optional
        The folder holding the ``ecgwatch`` package; default: where this module is.

    Returns
    -------
    Path or None
        ``package_root`` if it looks like a checkout (``pyproject.toml`` and ``deploy/kafka``
        beside the package), else None (e.g. site-packages).
    """
    root = package_root or _PACKAGE_ROOT
    if (root / "pyproject.toml").is_file() and (root / "deploy" / "kafka").is_dir():
        return root
    return None


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "")
    # The XDG spec: a relative path in these variables is invalid and must be ignored.
    base = Path(value) if value and Path(value).is_absolute() else Path.home() / fallback
    return base / "ecgwatch"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ecgwatch``, default ``~/.cache/ecgwatch`` (re-fetchable files)."""
    return _xdg("XDG_CACHE_HOME", ".cache")


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/ecgwatch``, default ``~/.local/share/ecgwatch`` (state to keep)."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def kafka_dir() -> Path:
    """The folder of Kafka's jars (``lib/``) and the pom Maven resolves them with.

    ``$ECGWATCH_KAFKA_DIR`` if set; else ``deploy/kafka`` in a checkout; else
    ``user_cache_dir() / "kafka"``.
    """
    env = os.environ.get(KAFKA_DIR_ENV)
    if env:
        return Path(env).resolve()
    root = checkout_root()
    return root / "deploy" / "kafka" if root else user_cache_dir() / "kafka"


def default_data_dir() -> Path:
    """The broker's default data directory.

    ``$ECGWATCH_BROKER_DATA_DIR`` if set; else ``.ecgwatch/kafka`` in a checkout (git-ignored);
    else ``user_data_dir() / "kafka"``.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).resolve()
    root = checkout_root()
    return root / ".ecgwatch" / "kafka" if root else user_data_dir() / "kafka"
