"""The package's shape: the pipeline's layers import only downwards and nothing in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lower layers never import higher ones (a package's own modules may import each other).
LAYERS = [
    {"rlprune.io", "rlprune.report", "rlprune.settings", "rlprune.timing", "rlprune.adapters",
     "rlprune.models", "rlprune.layers", "rlprune.units"},
    {"rlprune.pruning", "rlprune.analysis", "rlprune.backends", "rlprune.export"},
    {"rlprune.search"},
    {"rlprune.finetune", "rlprune.pipeline", "rlprune.sweep", "rlprune.zoo",
     "rlprune.run_report", "rlprune.step_timing", "rlprune.latency_report", "rlprune.video",
     "rlprune.html_report", "rlprune.small_dense", "rlprune.planner_budget",
     "rlprune.held_out"},
    {"rlprune.cli", "rlprune"},
]


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module an import statement names, at any depth (lazy imports count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


MODULES = _modules("rlprune")
# ``rlprune`` itself (the public API in __init__) sits on top and is left out.
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m not in (name, "rlprune")}
         for name, path in MODULES.items() if name != "rlprune"}


def _layer(module: str) -> int:
    best = max((p for layer in LAYERS for p in layer
                if module == p or module.startswith(p + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_higher_layer():
    upward = [(m, d) for m, deps in GRAPH.items() for d in deps if _layer(d) > _layer(m)]
    assert not upward, upward


def test_no_import_circles():
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                raise AssertionError(f"import circle: {' -> '.join([*path, dep])}")
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("package", ["envs", "tdmpc2"])
def test_model_and_env_packages_never_import_the_toolkit(package):
    for name, path in _modules(package).items():
        assert not any(m == "rlprune" or m.startswith("rlprune.") for m in _imports(path)), name


def test_only_adapters_know_concrete_models():
    for name, path in MODULES.items():
        if name.startswith(("rlprune.adapters", "rlprune.models")):
            continue
        concrete = [m for m in _imports(path)
                    if m.split(".")[0] in ("tdmpc2", "stable_baselines3", "sb3_contrib")
                    or m.startswith("rlprune.models")]
        assert not concrete, (name, concrete)


def test_modules_stay_small():
    long = {str(p.relative_to(ROOT)): n for pkg in ("rlprune", "tdmpc2", "envs")
            for p in _modules(pkg).values() if (n := len(p.read_text().splitlines())) > 420}
    assert not long, long
