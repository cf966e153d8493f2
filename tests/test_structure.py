"""The package's shape: no import circle, and the config stops at the top (only objects travel down)."""

from __future__ import annotations

import ast
from pathlib import Path

import spikecl

PACKAGE = Path(spikecl.__file__).resolve().parent
# Where a DictConfig may be seen: the entry points and the layer that turns the config into objects.
CONFIG_LAYER = {"spikecl.cli", "spikecl.run", "spikecl.api", "spikecl.experiment", "spikecl.build",
                "spikecl.fingerprint", "spikecl.sweeps", "spikecl.callbacks", "spikecl.tuning",
                "spikecl.bench.suite"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py")}


def imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """spikecl modules the module imports, at its top or inside its functions (a lazy import is still a
    dependency); imports only for type checkers (``if TYPE_CHECKING:``) are left out."""
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}  # "from pkg import submodule"
    return {m for m in found if m.startswith("spikecl")}


def test_the_import_graph_has_no_circle():
    trees = modules()
    packages = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    graph = {name: {m for m in imports(tree, name, name in packages) if m in trees and m != name}
             for name, tree in trees.items()}
    # a package's __init__ that re-exports its own modules is not a circle through them
    for package in packages:
        graph[package] = {m for m in graph[package] if not m.startswith(package + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_errors_imports_nothing_from_spikecl():
    tree = ast.parse((PACKAGE / "errors.py").read_text())
    assert not imports(tree, "spikecl.errors", False)


def test_no_dictconfig_below_the_config_layer():
    offenders = []
    for name, tree in modules().items():
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        if "DictConfig" in names and name not in CONFIG_LAYER:
            offenders.append(name)
    assert not offenders, f"modules below the config layer that take a DictConfig: {offenders}"
