"""Learning without Forgetting: the distillation term is the tempered KL between known score vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikecl.cl.minibatch import Batch
from spikecl.cl.plugins.lwf import LwF
from tests.factories import shipped_plugin
from tests.model_config import make_model
from tests.plugin_context import make_ctx, set_, task

# Last-hidden-layer spikes at step 0 (depth 2, 2 steps): the class scores are exactly s[0] @ W_out.
S0 = np.array([[1, 0, 1, 0], [0, 1, 1, 1]], dtype=np.float32)
W = np.array([[0.5, 0.2, 0.1], [0.3, 0.9, 0.4], [0.2, 0.1, 0.6], [0.7, 0.3, 0.2]], dtype=np.float32)


def setup(tasks):
    model = make_model(nb_inputs=6, hidden=[5, 4], nb_outputs=3)
    set_(model.w_out, W)
    ctx = make_ctx(model, 2, tasks)
    z = torch.zeros(2, 2, 4, dtype=torch.bool)
    z[:, 0] = torch.as_tensor(S0, dtype=torch.bool)
    batch = Batch(z, torch.tensor([2, 2]), torch.tensor([False, True]), torch.zeros(2, 2, 4), 2)
    return model, ctx, batch


def tempered_kl(prev, out, t):
    """mean over samples of sum_c q_c log(q_c / p_c), q = softmax(prev / T), p = softmax(out / T)."""
    q = np.exp(prev / t) / np.exp(prev / t).sum(axis=1, keepdims=True)
    p = np.exp(out / t) / np.exp(out / t).sum(axis=1, keepdims=True)
    return (q * np.log(q / p)).sum(axis=1).mean()


def test_loss_is_the_tempered_kl_on_the_old_classes():
    model, ctx, batch = setup([task("pre", [0, 1]), task("new", [2])])
    lwf = LwF(weight=0.7, temperature=2.0)
    lwf.before_task(ctx, 1)
    set_(model.w_out, W * 3)  # training moves the model; the frozen copy keeps the old scores
    out = torch.tensor([[1.0, -0.5, 4.0], [0.2, 0.3, -1.0]], requires_grad=True)
    term = lwf.loss(ctx, batch, out)
    prev = S0 @ W  # (0.7, 0.3, 0.7) and (1.2, 1.3, 1.2)
    expected = 0.7 * 2.0 ** 2 * tempered_kl(prev[:, :2], out.detach().numpy()[:, :2], 2.0)
    assert term.item() == pytest.approx(expected, rel=1e-5)
    term.backward()
    assert torch.all(out.grad[:, 2] == 0)  # the new class is not distilled
    assert all(not p.requires_grad for p in lwf.prev.parameters())
    assert torch.equal(lwf.prev.w_out, torch.as_tensor(W))
    lwf.after_task(ctx, 1)
    assert lwf.prev is None and lwf.state_dict() == {}  # nothing to carry: the copy lives within its task


def test_same_classes_are_all_distilled_and_equal_scores_cost_nothing():
    model, ctx, batch = setup([task("pre", [0, 1, 2]), task("speaker", [0, 1, 2])])
    lwf = shipped_plugin("lwf", temperature=3.0)
    lwf.before_task(ctx, 1)
    prev = torch.as_tensor(S0 @ W)
    assert lwf.loss(ctx, batch, prev).item() == pytest.approx(0.0, abs=1e-7)
    out = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    assert lwf.loss(ctx, batch, out).item() == pytest.approx(9.0 * tempered_kl(S0 @ W, out.numpy(), 3.0), rel=1e-5)
