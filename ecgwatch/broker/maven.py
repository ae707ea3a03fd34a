"""Resolving the Kafka broker jars from Maven Central (the packaged ``pom.xml``).

The pom ships inside the package (``ecgwatch/broker/pom.xml``), so an installed ecgwatch can
fetch too. :func:`fetch` copies it into the jars' folder (:func:`kafka_dir`, see
:mod:`ecgwatch.broker.paths`) and runs Maven there; nothing is written next to the code.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from ecgwatch.broker.paths import KAFKA_DIR_ENV, kafka_dir
from ecgwatch.errors import EcgwatchError

__all__ = ["POM", "fetch", "is_fetched", "kafka_dir"]

#: The Maven project that lists the broker's jars (package data).
POM = Path(__file__).resolve().with_name("pom.xml")
_STAMP = ".ecgwatch-fetched"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def is_fetched(kdir: Path | None = None) -> bool:
    """Whether ``kdir/lib`` holds a complete resolve of the packaged :data:`POM`.

    A successful :func:`fetch` writes a stamp with the pom's sha256 and every jar's name, so an
    interrupted copy or an edited pom (e.g. a new Kafka version) counts as incomplete.
    """
    kdir = kdir or kafka_dir()
    stamp = kdir / "lib" / _STAMP
    if not stamp.is_file() or not POM.is_file():
        return False
    digest, *jars = stamp.read_text().split()
    if digest != _pom_digest(POM) or not jars:
        return False
    return all((kdir / "lib" / jar).is_file() for jar in jars)


def fetch(kdir: Path | None = None, *, force: bool = False, timeout_s: float = 900.0) -> Path:
    """Resolve the Kafka broker jars into ``kdir/lib`` with Maven, unless already there.

    Copies :data:`POM` to ``kdir/pom.xml`` and runs ``mvn -B -q -f kdir/pom.xml
    dependency:copy-dependencies``; a second run is skipped (stamp) and a forced one is fast
    because Maven reuses ``~/.m2``.

    Parameters
    ----------
    kdir : Path, optional
        The jars' folder; default :func:`kafka_dir` (``deploy/kafka`` in a checkout, else
        the user cache; ``ECGWATCH_KAFKA_DIR`` overrides it).
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
    pom = _copy_pom(kdir)
    _run_maven(pom, lib, timeout_s)
    jars = sorted(p.name for p in lib.glob("*.jar"))
    if not any(j.startswith("kafka_2.13-") for j in jars):
        raise EcgwatchError(f"Maven ran but {lib} has no kafka_2.13 jar: check {pom}")
    (lib / _STAMP).write_text("\n".join([_pom_digest(POM), *jars]) + "\n")
    return lib


def _copy_pom(kdir: Path) -> Path:
    """Copy the packaged pom into ``kdir`` (Maven writes ``target/`` beside its pom)."""
    if not POM.is_file():
        raise EcgwatchError(
            f"{POM} not found: the ecgwatch installation is incomplete; reinstall ecgwatch"
        )
    try:
        kdir.mkdir(parents=True, exist_ok=True)
        pom = kdir / "pom.xml"
        shutil.copyfile(POM, pom)
    except OSError as exc:
        raise EcgwatchError(
            f"cannot write the Kafka jars' folder {kdir}: {exc}; set {KAFKA_DIR_ENV} to a "
            "writable folder"
        ) from exc
    return pom


def _run_maven(pom: Path, lib: Path, timeout_s: float) -> None:
    """``mvn dependency:copy-dependencies`` on ``pom`` into an emptied ``lib``; errors carry
    Maven's last lines."""
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
