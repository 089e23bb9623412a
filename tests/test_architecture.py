"""The layers of ``dmpo`` and the one direction its imports may point (docs/architecture.md):

    core:      errors ← objectives, npbench, sources, models, paths  (the maths, the problems, the models)
    adapters:  engines, evaluation                        (import the core only)
    pipeline:  pipeline                                   (composes core, engines, evaluation)
    front:     cli                                        (imports anything below)

A module may import its own package and any package of a lower layer, never one of its own
layer or above. Imports inside functions count too (lazy imports are still dependencies).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dmpo"
LAYER = {
    "errors": 0,
    "paths": 1,
    "objectives": 1,
    "npbench": 1,
    "sources": 1,
    "models": 1,
    "engines": 2,
    "evaluation": 2,
    "pipeline": 3,
    "cli": 4,
}


def package_of(path: Path) -> str | None:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts == ("__init__",):
        return None  # the package root re-exports errors only (checked below)
    return parts[0]



def dmpo_imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, first package under dmpo) of every dmpo import in the tree, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dmpo."):
                    found.append((node.lineno, alias.name.split(".")[1]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "dmpo":
                found.extend((node.lineno, alias.name) for alias in node.names)
            elif name.startswith("dmpo."):
                found.append((node.lineno, name.split(".")[1]))
    return found


def violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        package = package_of(path)
        module = ".".join(("dmpo", *path.relative_to(SRC).with_suffix("").parts))
        for line, target in dmpo_imports(ast.parse(path.read_text(encoding="utf-8")), module):
            if target == "__version__":
                continue
            if package is None:
                if target != "errors":
                    bad.append(f"{path.relative_to(SRC)}:{line}: the package root imports dmpo.{target}")
                continue
            if target == package:
                continue
            if target not in LAYER:
                bad.append(f"{path.relative_to(SRC)}:{line}: dmpo.{target} has no layer in LAYER")
            elif LAYER[target] >= LAYER[package]:
                bad.append(f"{path.relative_to(SRC)}:{line}: {package} (layer {LAYER[package]}) imports "
                           f"{target} (layer {LAYER[target]})")
    return bad


# The engine adapters are independent of each other: each imports the core and itself only.
ENGINES = ("trl", "verl")


def test_engine_adapters_do_not_import_each_other():
    bad = []
    for engine in ENGINES:
        for path in sorted((SRC / "engines" / engine).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                bad += [f"{path.relative_to(SRC)}: {name}" for name in names for other in ENGINES
                        if other != engine and (name.startswith(f"dmpo.engines.{other}")
                                                or name.split(".")[0] == other)]
    assert bad == []


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert packages | modules == set(LAYER)


def test_imports_point_down_the_layers():
    assert violations() == []


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("engines", "from dmpo.evaluation.sampling import x", "engines (layer 2) imports evaluation"),
        ("objectives", "import dmpo.npbench.base", "objectives (layer 1) imports npbench"),
        ("npbench", "from dmpo import pipeline", "npbench (layer 1) imports pipeline"),
        ("evaluation", "def f():\n    from dmpo.cli import main", "evaluation (layer 2) imports cli"),
    ],
)
def test_the_check_catches_an_upward_import(tmp_path, monkeypatch, package, source, expected):
    fake = tmp_path / "dmpo"
    for name in LAYER:
        folder = fake / name if name != "errors" else fake
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ("__init__.py" if name != "errors" else "errors.py")).write_text("")
    (fake / package / "bad.py").write_text(source + "\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["SRC"]), "SRC", fake)
    assert any(expected in line for line in violations())
