"""Code outside spikecl/models/ goes through the model's public methods: it reads no weight, neuron constant or
neuron state by name (issue 19), so a new neuron type needs no change anywhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import spikecl

PACKAGE = Path(spikecl.__file__).resolve().parent
# The network's weights, the LIF/adLIF constants and the neurons' state variables and modules.
INSIDE = {"w", "v", "w_out", "alpha", "beta", "threshold", "surrogate_scale", "syn", "mem", "adapt", "neurons",
          "readout", "sizes"}


def offenders(tree: ast.Module) -> list[tuple[int, str]]:
    """``x.name`` for a name of INSIDE, where ``x`` is anything but ``self`` (a class's own attributes are
    its business), or the model reached through ``self`` (``self.model.w``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in INSIDE:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id == "self":
                continue
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_nothing_outside_models_reads_the_model_inside():
    bad = {}
    for path in PACKAGE.rglob("*.py"):
        if PACKAGE / "models" in path.parents:
            continue
        hits = offenders(ast.parse(path.read_text()))
        if hits:
            bad[str(path.relative_to(PACKAGE))] = hits
    assert not bad, f"code outside spikecl/models/ reads the model's insides: {bad}"


def test_the_check_finds_what_it_looks_for():
    tree = ast.parse("def f(model, ctx):\n    a = model.w_out\n    b = ctx.model.neurons[0].alpha\n"
                     "    self.alpha = 1\n    return self.model.v")
    assert sorted(line for line, _ in offenders(tree)) == [2, 3, 3, 5]
