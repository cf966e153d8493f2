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
    dependency), imports only for type checkers (``if TYPE_CHECKING:``) included: they tie modules together too."""
    found = set()
    for node in ast.walk(tree):
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


def test_no_class_is_over_250_lines():
    big = [(name, node.name, node.end_lineno - node.lineno + 1) for name, tree in modules().items()
           for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno >= 250]
    assert not big, f"classes over 250 lines: {big}"


SPLIT_NAMES = {"progressive", "class_incremental", "sample_incremental"}


def test_no_module_but_the_splits_tests_a_split_s_name():
    # code that asks "is this the progressive split?" breaks for a new split: splits say how they report
    offenders = []
    for name, tree in modules().items():
        if name == "spikecl.data.splits":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) and o.value in SPLIT_NAMES for o in operands):
                    offenders.append((name, node.lineno))
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value in SPLIT_NAMES:
                offenders.append((name, node.lineno))
    assert not offenders, f"split names tested outside spikecl.data.splits: {offenders}"


# Tools with their own seeds, apart from an experiment's: the data generator, the converter, the benchmark.
OWN_STREAMS = ("spikecl.synth", "spikecl.convert", "spikecl.bench")


def test_every_random_stream_of_an_experiment_comes_from_the_registry():
    makers = {"default_rng", "manual_seed", "SeedSequence", "Generator", "seed"}
    offenders = []
    for name, tree in modules().items():
        if name == "spikecl.utils.streams" or name.startswith(OWN_STREAMS):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in makers:
                offenders.append((name, node.lineno, node.func.attr))
    assert not offenders, f"random streams made outside spikecl.utils.streams: {offenders}"


def test_a_gradient_step_happens_in_the_loop_only_and_the_route_to_it_is_cli_run_experiment_loop():
    steps = [name for name, tree in modules().items() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "step"
             and getattr(node.func.value, "id", getattr(node.func.value, "attr", "")) == "optimizer"]
    assert set(steps) - {"spikecl.bench.suite"} == {"spikecl.cl.loop"}
    trees = modules()
    assert "spikecl.run" in imports(trees["spikecl.cli"], "spikecl.cli", False)
    assert "spikecl.experiment" in imports(trees["spikecl.run"], "spikecl.run", False)
    learns = {name for name, tree in trees.items() for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "learn"}
    assert learns == {"spikecl.experiment"}


def test_the_readme_layout_names_every_module_and_only_modules_that_exist():
    import re

    readme = (PACKAGE.parents[1] / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    named = set(re.findall(r"[\w/]+\.py", layout))
    files = {p.name for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert {Path(n).name for n in named} <= files, f"named in the README but absent: {named - files}"
    missing = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if p.name not in ("__init__.py", "__main__.py") and p.name not in {Path(n).name for n in named}
                     and not (p.parent.name in OWN_LAYOUT and f"{p.parent.name}/" in layout))
    assert not missing, f"modules the README layout does not name: {missing}"


# Packages the README describes as a whole (their files are not listed one by one).
OWN_LAYOUT = {"synth", "convert", "bench", "loggers", "report", "measure", "utils", "plot", "neurons", "embedded"}


def test_no_module_repeats_the_name_of_a_top_level_module():
    # spikecl.build is "the build step" in messages and docs; a report/build.py beside it was a second one
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    repeated = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                      if p.parent != PACKAGE and p.stem in top)
    assert not repeated, f"modules named like a top-level module of spikecl: {repeated}"
