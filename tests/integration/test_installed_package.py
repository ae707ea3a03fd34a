"""ecgwatch installed from a wheel (not ``-e``), as the Dockerfile does: the broker tooling must
keep its jars and data out of site-packages.

The wheel is built from a copy of the sources without build isolation (offline) and installed
without dependencies into a fresh virtualenv; that venv finds the dependencies through a ``.pth``
line naming this venv's site-packages (a plain path, so the editable finder of the checkout is
not loaded and ``import ecgwatch`` is the installed copy). Kafka is not fetched again: the
installed tooling is pointed at this checkout's jars with ``ECGWATCH_KAFKA_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from ecgwatch import broker

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("detector", "training", "pipeline", "ecgwatch", "benchmarks")

_PROBE = """
import json, sys, sysconfig
import ecgwatch
from ecgwatch import broker
from ecgwatch.broker import maven
print(json.dumps({
    "ecgwatch": ecgwatch.__file__,
    "site": sysconfig.get_paths()["purelib"],
    "checkout": str(broker.checkout_root()),
    "kafka_dir": str(broker.kafka_dir()),
    "data_dir": str(broker.default_data_dir()),
    "pom": str(maven.POM),
    "pom_is_file": maven.POM.is_file(),
    "is_fetched": broker.is_fetched(),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ecgwatch installed from a wheel; returns its python."""
    tmp = tmp_path_factory.mktemp("installed")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "lib", "target")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, src / pkg, ignore=ignore)
    wheels = tmp / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(src),
        ],
        check=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("ecgwatch-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        timeout=120,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "zz_ecgwatch_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ECGWATCH_", "XDG_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, "HOME": str(home), **extra}


def _ecgwatch(
    python: Path, cwd: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ecgwatch`` command line with ``args``."""
    return subprocess.run(
        [str(python), "-m", "ecgwatch", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _probe(python: Path, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [str(python), "-c", _PROBE], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_installed_broker_paths_are_per_user_not_site_packages(
    installed: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    got = _probe(installed, tmp_path, _clean_env(home))
    site = str(got["site"])
    assert str(got["ecgwatch"]).startswith(site), "the probe imported the checkout, not the wheel"
    assert got["checkout"] == "None"
    assert got["pom_is_file"] and str(got["pom"]).startswith(site)  # the pom ships in the wheel
    assert got["kafka_dir"] == str(home / ".cache" / "ecgwatch" / "kafka")
    assert got["data_dir"] == str(home / ".local" / "share" / "ecgwatch" / "kafka")
    assert not str(got["kafka_dir"]).startswith(site)
    assert not str(got["data_dir"]).startswith(site)

    xdg = _clean_env(home, XDG_CACHE_HOME=str(tmp_path / "c"), XDG_DATA_HOME=str(tmp_path / "d"))
    got = _probe(installed, tmp_path, xdg)
    assert got["kafka_dir"] == str(tmp_path / "c" / "ecgwatch" / "kafka")
    assert got["data_dir"] == str(tmp_path / "d" / "ecgwatch" / "kafka")


def test_installed_tooling_uses_existing_jars_through_the_override(
    installed: Path, tmp_path: Path
) -> None:
    if not broker.is_fetched():
        pytest.skip("this checkout has no fetched Kafka jars (run `ecgwatch broker fetch`)")
    kdir = broker.kafka_dir()
    env = _clean_env(tmp_path, ECGWATCH_KAFKA_DIR=str(kdir))
    got = _probe(installed, tmp_path, env)
    assert got["kafka_dir"] == str(kdir)
    assert got["is_fetched"], "the installed pom differs from the one the jars were fetched with"
    # The installed command line finds them too, without running Maven.
    env["PATH"] = "/nonexistent"  # no mvn: a fetch would fail
    proc = _ecgwatch(installed, tmp_path, env, "broker", "fetch")
    assert proc.returncode == 0, proc.stderr
    assert f"Kafka jars in {kdir / 'lib'}" in proc.stdout
    data = tmp_path / "broker-data"
    env["ECGWATCH_BROKER_DATA_DIR"] = str(data)
    proc = _ecgwatch(installed, tmp_path, env, "broker", "status")
    assert proc.returncode == 1 and f"not running; data {data}" in proc.stdout, proc.stdout
