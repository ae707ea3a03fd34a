"""The worker refuses to start, with a one-line error and a non-zero exit, when it has no usable
model or its topics are missing. The three refusals run as concurrent subprocesses (each pays
for a TensorFlow import)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.settings import TopicNames
from tests.integration.conftest import SeedModel
from tests.integration.stream import REPO, ecgwatch_env, topics_env

pytestmark = pytest.mark.integration

CASES = ("empty_registry", "tampered_artifact", "missing_topics")


def _tampered_registry(seed: SeedModel, root: Path) -> Path:
    """A copy of the seed registry whose threshold was edited after publishing."""
    registry = root / "tampered"
    shutil.copytree(seed.registry, registry, symlinks=True)
    meta_path = registry / seed.artifact.name / "detector.json"
    meta = json.loads(meta_path.read_text())
    meta["threshold"]["value"] = meta["threshold"]["value"] * 10
    meta_path.write_text(json.dumps(meta))
    return registry


@pytest.fixture(scope="module")
def refusals(
    seed_model: SeedModel, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("refusals")
    (root / "empty").mkdir()
    registries = {
        "empty_registry": root / "empty",
        "tampered_artifact": _tampered_registry(seed_model, root),
        "missing_topics": seed_model.registry,
    }
    absent = TopicNames(*(f"it.absent.{t}" for t in ("windows", "scores", "alerts", "dlq")))
    procs = {}
    for case in CASES:
        env = ecgwatch_env(topics_env(absent) if case == "missing_topics" else None)
        cmd = [sys.executable, "-m", "ecgwatch", "worker", "--registry", str(registries[case])]
        cmd += ["--bootstrap", kafka_bootstrap, "--metrics-port", "0"]
        cmd += ["--data-dir", str(root / case), "--group-id", f"it-refuse-{case}"]
        procs[case] = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    out = {}
    for case, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for p in procs.values():
                p.kill()
            raise
        out[case] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("empty_registry", "has no published model"),
        ("tampered_artifact", "checksum mismatch"),
        ("missing_topics", "do not exist"),
    ],
)
def test_worker_refuses_to_start(
    refusals: dict[str, subprocess.CompletedProcess[str]], case: str, says: str
) -> None:
    proc = refusals[case]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # TensorFlow's C++ logging may write to stderr too; ecgwatch's own message is one line.
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ecgwatch worker: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert says in errors[0]
    if case == "missing_topics":
        assert "it.absent.windows" in errors[0] and "ecgwatch topics create" in errors[0]
    else:
        assert "refusing to start" in errors[0]
    assert "consuming" not in proc.stdout  # never got as far as starting Faust
