"""The dependency rule of docs/architecture.md ("Contracts between packages"), checked on the
source (AST), independent of import-linter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "detector": {"faust", "aiokafka", "kafka", "training", "pipeline", "ecgwatch", "mode"},
    "training": {"faust", "aiokafka", "kafka", "pipeline", "ecgwatch", "mode"},
    "pipeline": {"training", "ecgwatch"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    offenders = {
        str(f.relative_to(REPO)): sorted(imported_roots(f) & FORBIDDEN[package]) for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"{package} imports what docs/architecture.md forbids: {offenders}"


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import faust\nfrom training.job import train\n")
    assert imported_roots(bad) == {"faust", "training"}
