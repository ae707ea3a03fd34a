"""Resolving the Kafka broker jars from Maven Central (``deploy/kafka/pom.xml``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ecgwatch.errors import EcgwatchError

__all__ = ["REPO_ROOT", "fetch", "is_fetched", "kafka_dir"]

#: The checkout this package runs from (deploy/ and .ecgwatch/ live there).
REPO_ROOT = Path(__file__).resolve().parents[2]
_STAMP = ".ecgwatch-fetched"


def kafka_dir() -> Path:
    """The Maven project folder (``deploy/kafka``); ``ECGWATCH_KAFKA_DIR`` overrides it."""
    env = os.environ.get("ECGWATCH_KAFKA_DIR")
    return Path(env).resolve() if env else REPO_ROOT / "deploy" / "kafka"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def is_fetched(kdir: Path | None = None) -> bool:
    """Whether ``lib/`` holds a complete resolve of the current ``pom.xml``.

    A successful :func:`fetch` writes a stamp with the pom's sha256 and every jar's name, so an
    interrupted copy or an edited pom (e.g. a new Kafka version) counts as incomplete.
    """
    kdir = kdir or kafka_dir()
    stamp = kdir / "lib" / _STAMP
    pom = kdir / "pom.xml"
    if not stamp.is_file() or not pom.is_file():
        return False
    digest, *jars = stamp.read_text().split()
    if digest != _pom_digest(pom) or not jars:
        return False
    return all((kdir / "lib" / jar).is_file() for jar in jars)


def fetch(kdir: Path | None = None, *, force: bool = False, timeout_s: float = 900.0) -> Path:
    """Resolve the Kafka broker jars into ``deploy/kafka/lib`` with Maven, unless already there.

    Runs ``mvn -B -q -f deploy/kafka/pom.xml dependency:copy-dependencies``; a second run is
    skipped (stamp) and a forced one is fast because Maven reuses ``~/.m2``.

    Parameters
    ----------
    kdir : Path, optional
        The Maven project folder; default :func:`kafka_dir`.
    force : bool
        Resolve again even if ``lib/`` looks complete.
    timeout_s : float
        Limit for the Maven run.

    Returns
    -------
    Path
        The ``lib`` folder.

    Raises
    ------
    EcgwatchError
        If Maven is missing or the resolve fails (the message carries Maven's last lines).
    """
    kdir = kdir or kafka_dir()
    lib = kdir / "lib"
    if not force and is_fetched(kdir):
        return lib
    pom = kdir / "pom.xml"
    if not pom.is_file():
        raise EcgwatchError(
            f"{pom} not found: run from an ecgwatch checkout or set ECGWATCH_KAFKA_DIR"
        )
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EcgwatchError("Maven (mvn) is not on PATH: install it (apt-get install maven)")
    # A stale or partial lib/ could mix versions on the classpath: start from empty.
    shutil.rmtree(lib, ignore_errors=True)
    cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EcgwatchError(
            f"Maven did not finish within {timeout_s:.0f} s ({' '.join(cmd)}): check the network"
            " access to Maven Central, then run `ecgwatch broker fetch` again"
        ) from exc
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise EcgwatchError(f"Maven could not resolve the Kafka jars ({' '.join(cmd)}): {tail}")
    jars = sorted(p.name for p in lib.glob("*.jar"))
    if not any(j.startswith("kafka_2.13-") for j in jars):
        raise EcgwatchError(f"Maven ran but {lib} has no kafka_2.13 jar: check {pom}")
    (lib / _STAMP).write_text("\n".join([_pom_digest(pom), *jars]) + "\n")
    return lib
