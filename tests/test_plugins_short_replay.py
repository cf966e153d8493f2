"""Short-time replay: stored spikes replayed at T / r steps with alpha^r, beta^r and a scaled threshold."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Plugin, Strategy
from spikecl.cl.minibatch import Piece, TimeScale, minibatches
from spikecl.cl.plugins import ShortTimeReplay
from spikecl.cl.sources import BufferSource
from spikecl.cl.storage import ReplayBuffer
from spikecl.errors import ConfigError
from tests.factories import readout_plugin, replay_plugin
from tests.model_config import make_model
from tests.plugin_context import set_, toy_context

W2 = [[1.5, 0.4], [0.3, 1.2]]   # hidden layer 1 (2 neurons) -> hidden layer 2 (2 neurons)
V2 = [[0.0, -0.5], [0.2, 0.0]]  # recurrence of layer 2
WOUT = [[1.0, -0.5], [0.3, 0.8]]
# Spikes of hidden layer 1 over 12 steps; stored 1:2 with or_impulse, one step per window of 2.
FULL = [[1, 0], [0, 0], [0, 1], [1, 0], [0, 0], [0, 1], [0, 0], [1, 0], [0, 0], [0, 0], [1, 0], [0, 1]]
SHORT = [[1, 0], [1, 1], [0, 1], [1, 0], [0, 0], [1, 1]]  # the OR of every window


def hand_lif(z, alpha, beta, threshold):
    """The LIF equations of spikecl.models.neurons.lif, step by step: layer-2 spikes and the readout record."""
    syn, mem, prev, spikes = [0.0, 0.0], [0.0, 0.0], [0, 0], []
    for t in range(len(z)):
        s = [int(m > threshold) for m in mem]                       # s[t] = H(mem[t] - threshold)
        h = [sum(z[t][i] * W2[i][j] for i in range(2)) + sum(prev[i] * V2[i][j] for i in range(2))
             for j in range(2)]                                       # h[t] = I[t] + s[t-1] V
        mem = [(beta * mem[j] + syn[j]) * (1 - s[j]) for j in range(2)]  # mem[t+1]
        syn = [alpha * syn[j] + h[j] for j in range(2)]                 # syn[t+1]
        prev = s
        spikes.append(s)
    out, flt = [[0.0, 0.0]], [0.0, 0.0]
    for t in range(len(z)):
        a = [sum(spikes[t][i] * WOUT[i][c] for i in range(2)) for c in range(2)]
        out.append([beta * out[-1][c] + flt[c] for c in range(2)])     # out[t+1] = beta out[t] + flt[t]
        flt = [alpha * flt[c] + a[c] for c in range(2)]                 # flt[t+1] = alpha flt[t] + a[t]
    return spikes, out


def tiny_model():
    model = make_model(nb_inputs=3, hidden=[2, 2], nb_outputs=2)
    set_(model.w[1], W2)
    set_(model.v[1], V2)
    set_(model.w_out, WOUT)
    return model


def test_a_stored_spike_train_replayed_short_time_follows_the_lif_equations_with_alpha_r_beta_r():
    model = tiny_model()
    buffer = ReplayBuffer("spikes", 12, 2, ratio=2, codec="or_impulse")
    buffer.add(torch.tensor([FULL], dtype=torch.float32), [1], [7])
    source = BufferSource(buffer, model, 1, raw_input=False, encoded=True)
    z = source.entry(np.array([0]))
    assert z.dtype == torch.bool and z[0].int().tolist() == SHORT and source.ratio == 2  # not decompressed
    lif = model.neurons[1]  # hidden layer 2, the one above depth 1
    alpha, beta = lif.alpha, lif.beta
    before = model.from_latent(z, 1).detach()
    with model.time_scaled(2, threshold_scale=0.3):
        assert (lif.alpha, lif.beta, lif.threshold) == (alpha ** 2, beta ** 2, 0.3)
        out, spikes = model.from_latent(z, 1, return_spikes=True)
    hand_spikes, hand_out = hand_lif(SHORT, alpha ** 2, beta ** 2, 0.3)
    assert spikes[0].int().tolist() == hand_spikes
    np.testing.assert_allclose(out[0].detach().numpy(), hand_out, rtol=1e-5, atol=1e-6)
    # the case tells the constants apart: the model's own, and a threshold left at 1
    own_spikes, own_out = hand_lif(SHORT, alpha, beta, 1.0)
    np.testing.assert_allclose(before[0].numpy(), own_out, rtol=1e-5, atol=1e-6)
    assert hand_lif(SHORT, alpha ** 2, beta ** 2, 1.0)[0] != hand_spikes
    assert np.abs(np.array(own_out) - np.array(hand_out)).max() > 0.1
    # after the block: the model's constants, and a readout kernel of its own constants for 6 steps again
    assert (lif.alpha, lif.beta, lif.threshold) == (alpha, beta, 1.0)
    assert torch.equal(model.from_latent(z, 1).detach(), before)


def test_the_gradient_of_a_short_time_step_is_taken_with_the_constants_it_ran_with():
    model = tiny_model()
    z = torch.tensor([SHORT], dtype=torch.bool)
    with model.time_scaled(2, threshold_scale=0.3):
        inside = torch.autograd.grad(model.from_latent(z, 1).max(dim=1).values.sum(), model.w_out)[0]
        loss = model.from_latent(z, 1).max(dim=1).values.sum()
    outside = torch.autograd.grad(loss, model.w_out)[0]  # backward after the block
    assert torch.equal(inside, outside)


context = toy_context


def strategy(mix="sequential", epochs=0, order=("replay", "short"), **extra):
    plugins = {"replay": replay_plugin("latent", 16, 0, mix), "short": ShortTimeReplay(threshold_scale=0.5, lr_scale=0.25)}
    plugins = {"readout": readout_plugin(), **{k: plugins[k] for k in order}, **extra}
    return Strategy(name="t", latent_depth=1, epochs=epochs, lr=1e-2, batch_size=8, plugins=plugins,
                    optimizer=partial(torch.optim.Adamax, lr=1e-2))


def test_replayed_minibatches_read_the_encoded_buffer_under_the_scaled_constants_and_lr():
    ctx, s = context(), strategy()
    s.learn(ctx, 1)  # no epoch: sets up the task (optimiser, buffer)
    replay, short = s.plugins["replay"], s.plugins["short"]
    replay.before_task(ctx, 1)
    short.before_task(ctx, 1)
    ctx.batches = [[Piece(ctx.new, b)] for b in minibatches(np.arange(len(ctx.new)), 8)]
    replay.before_epoch(ctx, 1, 1)
    short.before_epoch(ctx, 1, 1)
    new = [b for b in ctx.batches if not b[0].replayed]
    rep = [b for b in ctx.batches if b[0].replayed]
    assert new and rep and all(short.dynamics(ctx, b) is None and short.lr_factor(ctx, b) == 1 for b in new)
    z = rep[0][0].source.entry(rep[0][0].idx)
    assert z.shape[1] == ctx.data.spikes.nb_steps // 2
    assert torch.equal(z, replay.buffer.encoded(rep[0][0].idx))
    assert short.dynamics(ctx, rep[0]) == TimeScale(2, 0.5) and short.lr_factor(ctx, rep[0]) == 0.25
    with pytest.raises(ValueError, match="mixes"):
        short.dynamics(ctx, [*rep[0], *new[0]])


def test_mixed_replay_and_no_replay_are_config_errors_and_the_order_is_its_own():
    with pytest.raises(ConfigError, match="mix=sequential or interleaved, not mixed"):
        strategy(mix="mixed")
    with pytest.raises(ConfigError, match="needs a Replay plugin"):
        Strategy(name="t", latent_depth=1, epochs=0, lr=1e-2, batch_size=8,
                 plugins={"s": ShortTimeReplay(threshold_scale=1.0, lr_scale=1.0)},
                 optimizer=partial(torch.optim.Adamax, lr=1e-2))
    # listed before the replay plugin, it still runs after it (its before_epoch rewrites replay's pieces)
    assert list(strategy(order=("short", "replay")).plugins) == ["readout", "replay", "short"]


class Steps(Plugin):
    """Records the steps and the learning rate every minibatch trains with."""

    def __init__(self):
        self.seen = []

    def loss(self, ctx, batch, out):
        self.seen.append((bool(batch.replayed.all()), batch.z.shape[1], ctx.optimizer.param_groups[0]["lr"]))


@pytest.mark.parametrize("mix", ["sequential", "interleaved"])
def test_the_loop_trains_replayed_minibatches_short(mix):
    ctx, steps = context(), Steps()
    strategy(mix, epochs=1, steps=steps).learn(ctx, 1)
    t = ctx.data.spikes.nb_steps
    assert {(r, n, lr) for r, n, lr in steps.seen} == {(False, t, 1e-2), (True, t // 2, 0.25 * 1e-2)}
    assert ctx.model.neurons[-1].alpha == make_model(nb_inputs=24, hidden=[16, 12, 8], nb_outputs=4).neurons[-1].alpha
