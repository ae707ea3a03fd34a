"""Model kinds: one registry, the four built-in builders in one module, no import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BUILT_IN = ("dense", "conv1d", "lstm", "vae")


def _detector_imports(path: Path) -> set[str]:
    """The ``detector.*`` modules a file imports, anywhere in it (function-level too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("detector.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "detector":  # from detector import architectures
                found |= {f"detector.{a.name}" for a in node.names}
            elif node.module.startswith("detector."):
                found.add(node.module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return cycles


def test_no_import_cycle_between_detector_modules() -> None:
    modules = {
        f"detector.{p.stem}": p for p in (REPO / "detector").glob("*.py") if p.name != "__init__.py"
    }
    graph = {name: _detector_imports(p) & set(modules) for name, p in modules.items()}
    assert graph["detector.architectures"] == {"detector.errors", "detector.kinds"}
    assert _cycles(graph) == []


def test_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]


def test_no_module_getattr() -> None:
    for name in ("models", "architectures", "kinds"):
        tree = ast.parse((REPO / "detector" / f"{name}.py").read_text())
        top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "__getattr__" not in top, name


def test_importing_architectures_alone_registers_every_kind_there() -> None:
    code = (
        "import sys\n"
        "import detector.architectures\n"
        "from detector import kinds\n"
        "print(','.join(kinds.registered_kinds()))\n"
        "print(','.join(sorted({kinds._BUILDERS[k][0].__module__ for k in kinds._BUILDERS})))\n"
        "print('keras' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    registered, modules, keras_loaded = proc.stdout.split()
    assert registered.split(",") == list(BUILT_IN)
    assert modules == "detector.architectures"
    assert keras_loaded == "False"  # registration builds nothing


def test_public_names_stay_where_they_are_imported() -> None:
    from detector.models import (
        MODEL_KINDS,
        build_model,
        custom_objects,
        default_params,
        register_kind,
    )
    from detector.models import build_model as models_build_model

    assert MODEL_KINDS == BUILT_IN
    assert models_build_model is build_model and callable(register_kind)
    assert default_params("dense") == {"encoder_widths": [32, 16, 8], "activation": "relu"}
    assert set(custom_objects()) == {"VAESampling"}


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("dense", {"encoder_widths": []}, "encoder_widths: .* non-empty list"),
        ("lstm", {"units": 0}, "units: 0 must be a positive integer"),
        ("vae", {"kl_weight": -1}, "kl_weight: -1 must be a number >= 0"),
    ],
)
def test_shared_parameter_checks(kind: str, params: dict, message: str) -> None:
    from detector import DetectorConfigError
    from detector.models import build_model

    with pytest.raises(DetectorConfigError, match=message):
        build_model(kind, 140, params)
