"""The import graph goes one way (DESIGN.md): no module imports a layer above its own, so there
is no cycle, and a newcomer can say which file owns what (the chain, the regions, the rate
algorithms, the problem that delegates to them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "fpsolver"

#: Layers from the bottom up; a module may import only modules of lower layers (or its own package's).
LAYERS = [
    {"_version", "errors", "threads"},
    {"symmetrize", "extrapolate", "multigrid", "censoring"},
    {"grid", "expressions"},
    {"boundary", "fields", "landscapes", "fields_xr", "gridcheck"},
    {"tabulated"},
    {"models", "critical", "initial", "linalg", "regions", "noise"},
    {"operators", "spectral", "stepping", "theory", "optimizers", "resources"},
    {"chain", "simulate", "kronecker"},
    {"rates", "barrier", "transient"},
    {"escape"},
    {"problem"},
    {"analysis", "validation", "comparison"},
    {"scenario", "io", "plotting", "accessor"},
    {"runner"},
    {"sweeps"},
    {"cli", "__init__", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _top(module: Path) -> str:
    parts = module.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(module: Path) -> set[str]:
    """fpsolver modules imported by ``module`` (top-level names inside the package)."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    depth = len(module.relative_to(PACKAGE).parts)  # 1 for fpsolver/x.py, 2 for fpsolver/pkg/x.py
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level == depth and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == depth and not node.module:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fpsolver."):
            found.add(node.module.split(".")[1])
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = sorted({_top(m) for m in MODULES} - set(RANK))
    assert not missing, f"add these modules to LAYERS: {missing}"


@pytest.mark.parametrize("module", MODULES, ids=[str(m.relative_to(PACKAGE)) for m in MODULES])
def test_no_upward_import(module):
    own = _top(module)
    upward = sorted(name for name in _imports(module) - {own} if RANK.get(name, -1) >= RANK[own])
    assert not upward, f"{module.relative_to(PACKAGE)} (layer {RANK[own]}) imports {upward} from its own layer or above"
