"""Online EWC: the Fisher, its accumulation and the penalty against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikecl.models import class_scores
from tests.factories import clustered_dataset, shipped_plugin
from tests.model_config import make_model
from tests.plugin_context import TensorSource, make_ctx, set_, task

TASKS = [task("pre", [0, 1]), task("new", [2])]
# Spikes of the last hidden layer (depth 2) at step 0 of 3 samples. With 2 steps the readout record is
# (0, 0, a[0]) with a = s @ W_out, so for positive weights the class scores are exactly s[0] @ W_out.
S0 = np.array([[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0]], dtype=np.float32)
Y = np.array([0, 2, 1])
W = np.array([[0.5, 0.2, 0.1], [0.3, 0.9, 0.4], [0.2, 0.1, 0.6], [0.7, 0.3, 0.2]], dtype=np.float32)


def last_layer_case(w=W):
    model = make_model(nb_inputs=6, hidden=[5, 4], nb_outputs=3)
    set_(model.w_out, w)
    z = torch.zeros(3, 2, 4)
    z[:, 0] = torch.as_tensor(S0)
    z[:, 1] = 1.0  # never reaches the readout record of 2 steps
    return model, make_ctx(model, 2, TASKS, new=TensorSource(z, Y))


def hand_gradients(w):
    """d log softmax(s W)_y / dW = outer(s, onehot(y) - softmax(s W)), one [4, 3] matrix per sample."""
    scores = S0 @ w
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    return np.einsum("ij,ik->ijk", S0, np.eye(3)[Y] - p)


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_fisher_is_the_size_weighted_mean_of_squared_minibatch_gradients(batch_size):
    model, ctx = last_layer_case()
    ewc = shipped_plugin("ewc", ewc_lambda=2.0, batch_size=batch_size)
    ewc.after_task(ctx, 1)
    g = hand_gradients(W)
    batches = [g[i:i + batch_size] for i in range(0, 3, batch_size)]
    expected = sum(len(b) / 3 * b.mean(axis=0) ** 2 for b in batches)
    assert ewc.fisher.keys() == {"w_out"}
    np.testing.assert_allclose(ewc.fisher["w_out"].numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ewc.anchor["w_out"].numpy(), W)
    assert model.w_out.grad is None  # the Fisher pass leaves the training gradients alone


def test_penalty_and_its_gradient_by_hand():
    model, ctx = last_layer_case()
    ewc = shipped_plugin("ewc", ewc_lambda=3.0, batch_size=1)
    assert ewc.loss(ctx, None, None) is None  # nothing consolidated yet
    ewc.after_task(ctx, 1)
    fisher = (hand_gradients(W) ** 2).mean(axis=0)
    shift = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
    set_(model.w_out, W + shift)
    penalty = ewc.loss(ctx, None, None)
    assert penalty.item() == pytest.approx(3.0 / 2 * (fisher * shift ** 2).sum(), rel=1e-5)
    penalty.backward()
    np.testing.assert_allclose(model.w_out.grad.numpy(), 3.0 * fisher * shift, rtol=1e-5, atol=1e-7)


def test_online_accumulation_with_decay():
    model, ctx = last_layer_case()
    ewc = shipped_plugin("ewc", decay=0.5, batch_size=1)
    ewc.after_task(ctx, 1)
    w2 = W * 2
    set_(model.w_out, w2)
    ewc.after_task(ctx, 2)
    f1, f2 = ((hand_gradients(w) ** 2).mean(axis=0) for w in (W, w2))
    np.testing.assert_allclose(ewc.fisher["w_out"].numpy(), 0.5 * f1 + f2, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ewc.anchor["w_out"].numpy(), w2)
    restored = shipped_plugin("ewc", decay=0.5)
    restored.load_state_dict(ewc.state_dict())
    set_(model.w_out, W)
    assert restored.loss(ctx, None, None).item() == pytest.approx(ewc.loss(ctx, None, None).item())


def per_sample_fisher(model, z, y, depth, params):
    """The exact per-sample Fisher from a plain loop of cross-entropies (the negative log-likelihood)."""
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(y)):
        loss = F.cross_entropy(class_scores(model.from_latent(z[i:i + 1], depth)), y[i:i + 1])
        for t, g in zip(total, torch.autograd.grad(loss, params)):
            t += g.square() / len(y)
    return total


def test_fisher_of_every_trained_layer_matches_a_per_sample_loop():
    torch.manual_seed(0)
    model = make_model(nb_inputs=6, hidden=[5, 4], nb_outputs=3, weight_scale=4.0)
    z = (torch.rand(4, 12, 5) < 0.5).float()  # spikes of layer 1
    y = torch.tensor([0, 1, 2, 1])
    ctx = make_ctx(model, 1, TASKS, new=TensorSource(z, y))
    ewc = shipped_plugin("ewc", batch_size=1)
    ewc.after_task(ctx, 1)
    expected = per_sample_fisher(model, z, y, 1, ctx.trainable)
    assert list(ewc.fisher) == ["w.1", "v.1", "w_out"]
    for f, e in zip(ewc.fisher.values(), expected):
        assert e.abs().sum() > 0
        torch.testing.assert_close(f, e, rtol=1e-5, atol=1e-8)


def test_first_task_consolidates_the_pretraining_train_data_at_the_training_depth():
    torch.manual_seed(1)
    data = clustered_dataset(n_per_class=2, classes=3, steps=12, units=6)
    model = make_model(nb_inputs=6, hidden=[5, 4], nb_outputs=3, weight_scale=4.0)
    pre_train = np.array([0, 2, 3, 5])  # the rest of the pretraining pool is its test portion
    tasks = [task("pre", [0, 1, 2], pre_train), task("new", [0, 1, 2], [1, 4])]
    ctx = make_ctx(model, 1, tasks, data=data)
    ewc = shipped_plugin("ewc", batch_size=1)
    ewc.before_task(ctx, 1)
    with torch.no_grad():
        z = model.latent(data.spikes.dense(pre_train), 1)
    expected = per_sample_fisher(model, z, torch.as_tensor(data.labels[pre_train]), 1, ctx.trainable)
    for f, e in zip(ewc.fisher.values(), expected):
        torch.testing.assert_close(f, e, rtol=1e-5, atol=1e-8)
    assert all(torch.equal(ewc.anchor[n], p) for n, p in model.named_parameters() if n in ewc.anchor)
    before = {n: f.clone() for n, f in ewc.fisher.items()}
    ewc.before_task(ctx, 2)  # a Fisher exists: later tasks do not recompute it
    assert all(torch.equal(before[n], ewc.fisher[n]) for n in before)
