"""Synaptic Intelligence: the path integral and the importance of a two-parameter example by hand."""

from __future__ import annotations

import pytest
import torch

from spikecl.cl.plugins.si import SI
from tests.factories import shipped_plugin
from tests.model_config import make_model
from tests.plugin_context import make_ctx, set_, task


def two_parameters():
    """A network whose only trained parameters (at depth 1 = its last layer) are the two readout weights."""
    model = make_model(nb_inputs=1, hidden=[1], nb_outputs=2, recurrent=False)
    set_(model.w_out, [[1.0, -2.0]])
    return model, make_ctx(model, 1, [task("pre", [0]), task("a", [1]), task("b", [1])])


def step(si, ctx, grad, update):
    """A training step as the loop runs it: gradient, after_backward, then the optimiser's update."""
    p = ctx.model.w_out
    p.grad = torch.tensor([grad])
    si.after_backward(ctx, ctx.task)
    set_(p, p.detach() + torch.tensor([update]))


def test_importance_of_one_task_by_hand():
    model, ctx = two_parameters()
    si = SI(c=0.5, xi=0.01)
    si.before_task(ctx, 1)
    step(si, ctx, [0.5, -1.0], [-0.1, 0.2])    # omega += -g * delta = (0.05, 0.2), accounted at the next step
    step(si, ctx, [0.2, 0.4], [-0.05, -0.1])   # omega += (0.01, 0.04), accounted at the end of the epoch
    si.after_epoch(ctx, 1, 1)
    assert si.omega["w_out"].tolist()[0] == pytest.approx([0.06, 0.24])
    si.after_task(ctx, 1)
    # Delta = (0.85 - 1, -1.9 + 2) = (-0.15, 0.1): Omega = (0.06 / (0.0225 + 0.01), 0.24 / (0.01 + 0.01))
    assert si.importance["w_out"].tolist()[0] == pytest.approx([0.06 / 0.0325, 12.0])

    # The next task: the surrogate c * sum Omega (theta - theta~)^2 around theta~ = (0.85, -1.9)
    ctx.task = 2
    si.before_task(ctx, 2)
    set_(model.w_out, [[0.95, -2.0]])
    penalty = si.loss(ctx, None, None)
    assert penalty.item() == pytest.approx(0.5 * (0.06 / 0.0325 * 0.01 + 12.0 * 0.01))
    restored = SI(c=0.5, xi=0.01)
    restored.load_state_dict(si.state_dict())
    assert restored.loss(ctx, None, None).item() == pytest.approx(penalty.item())


def test_path_integral_leaves_out_the_surrogate_own_gradient():
    model, ctx = two_parameters()
    si = SI(c=0.5, xi=0.01)
    si.before_task(ctx, 1)
    step(si, ctx, [0.5, -1.0], [-0.1, 0.2])
    si.after_task(ctx, 1)
    omega1 = si.importance["w_out"].clone()   # (0.05 / (0.01 + 0.01), 0.2 / (0.04 + 0.01)) = (2.5, 4)
    assert omega1.tolist()[0] == pytest.approx([2.5, 4.0])

    ctx.task = 2
    si.before_task(ctx, 2)                     # theta~ = (0.9, -1.8)
    set_(model.w_out, [[1.0, -1.7]])           # theta - theta~ = (0.1, 0.1)
    task_grad = torch.tensor([-1.0, -1.0])
    surrogate_grad = 2 * 0.5 * omega1[0] * torch.tensor([0.1, 0.1])
    step(si, ctx, (task_grad + surrogate_grad).tolist(), [0.1, 0.0])
    si.after_task(ctx, 2)
    # omega = -(-1, -1) * (0.1, 0) = (0.1, 0); Delta = (1.1 - 0.9, -1.7 + 1.8) = (0.2, 0.1)
    assert si.importance["w_out"].tolist()[0] == pytest.approx([2.5 + 0.1 / 0.05, 4.0 + 0.0])


def test_no_surrogate_before_a_task_has_been_learned():
    model, ctx = two_parameters()
    si = shipped_plugin("si")
    si.before_task(ctx, 1)
    assert si.loss(ctx, None, None) is None
