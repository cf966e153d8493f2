"""Consolidation: epochs on the replay buffer alone after a task, class-balanced, with optional noise."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Plugin, Strategy
from spikecl.cl.plugins import Consolidation
from spikecl.cl.plugins.consolidation import balanced_plan, spike_dropout, spike_jitter
from spikecl.errors import ConfigError
from spikecl.utils.streams import replay_noise
from tests.factories import readout_plugin, replay_plugin
from tests.plugin_context import TensorSource, toy_context


context = toy_context


def strategy(epochs=0, **plugins):
    plugins = {"readout": readout_plugin(), "replay": replay_plugin("latent", 16, 0), **plugins}
    return Strategy(name="t", latent_depth=1, epochs=epochs, lr=1e-2, batch_size=8, plugins=plugins,
                    optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))


def sleep(**settings):
    """A Consolidation plugin with conf/plugin/consolidation.yaml's settings, changed by ``settings``."""
    return Consolidation(**{"epochs": 2, "lr_scale": 1.0, "noise": "none", "p": 0.1, "jitter": 1, "include_new": True,
                            **settings})


def weights(ctx):
    return {n: p.detach().clone() for n, p in ctx.model.named_parameters()}


def learned(consolidation, epochs=0):
    ctx = context()
    start = weights(ctx)
    plugins = {} if consolidation is None else {"sleep": consolidation}
    strategy(epochs, **plugins).learn(ctx, 1)
    return ctx, start, weights(ctx)


@pytest.mark.trained_figures
@pytest.mark.parametrize("noise", ["none", "dropout", "jitter"])
def test_consolidation_trains_only_the_trainable_parameters(noise):
    # no epoch on the task itself: every change after the readout's new column is the consolidation's
    _, start, plain = learned(None)
    ctx, _, after = learned(sleep(epochs=2, noise=noise, p=0.3, jitter=2))
    for name in ("w.0", "v.0"):  # below the latent depth 1
        assert torch.equal(after[name], start[name]), name
    for name in ("w.1", "w.2", "v.1", "v.2", "w_out"):
        assert not torch.equal(after[name], plain[name]), name
    assert all(p.requires_grad for p in ctx.model.parameters())  # everything un-frozen again
    assert ctx.optimizer.param_groups[0]["lr"] == 1e-2  # the phase's learning rate is restored


def test_zero_epochs_change_nothing():
    _, _, plain = learned(None, epochs=1)
    _, _, after = learned(sleep(epochs=0, noise="none"), epochs=1)
    assert all(torch.equal(after[n], plain[n]) for n in plain)


@pytest.mark.trained_figures
def test_the_same_seed_gives_the_same_noisy_consolidation_and_noise_matters():
    a = learned(sleep(epochs=1, noise="dropout", p=0.5))[2]
    b = learned(sleep(epochs=1, noise="dropout", p=0.5))[2]
    clean = learned(sleep(epochs=1))[2]
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["w_out"], clean["w_out"])


def test_consolidation_needs_a_replay_plugin():
    with pytest.raises(ConfigError, match="needs a Replay plugin"):
        Strategy(name="t", latent_depth=1, epochs=0, lr=1e-2, batch_size=8, plugins={"c": sleep()},
                 optimizer=partial(torch.optim.Adamax, lr=1e-2))


def test_class_balanced_plan_holds_every_class_equally():
    buffer = TensorSource(torch.zeros(6, 2, 1), [0, 0, 0, 0, 1, 1])
    new = TensorSource(torch.zeros(1, 2, 1), [2])
    plan = balanced_plan([(buffer, True), (new, False)], 3, np.random.default_rng(0))
    assert len(plan) == 4  # 4 rows (the largest class) of one sample of each of the 3 classes
    for parts in plan:
        labels = sorted(int(p.source.labels[i]) for p in parts for i in p.idx)
        assert labels == [0, 1, 2]
        assert all(p.replayed == (p.source is buffer) for p in parts)
    seen = [i for parts in plan for p in parts if p.source is buffer for i in p.idx]
    assert sorted(seen) == [0, 1, 2, 3, 4, 4, 5, 5]  # every stored sample; the smaller class twice


def test_dropout_thins_spikes_and_counts():
    g = replay_noise(0, 1, 1, "cpu")
    z = (torch.rand(4, 50, 20, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    dropped = spike_dropout(z, 0.5, "spikes", g)
    assert bool((dropped <= z).all()) and 0.4 < dropped.sum() / z.sum() < 0.6
    assert torch.equal(spike_dropout(z, 0.0, "spikes", g), z)
    counts = z * 3
    thinned = spike_dropout(counts, 0.5, "counts", g)
    assert bool((thinned <= counts).all()) and 0.4 < thinned.sum() / counts.sum() < 0.6
    assert torch.equal(thinned, thinned.round())
    again = spike_dropout(z, 0.5, "spikes", replay_noise(0, 1, 1, "cpu"))
    assert torch.equal(again, spike_dropout(z, 0.5, "spikes", replay_noise(0, 1, 1, "cpu")))


def test_jitter_moves_each_spike_by_at_most_its_range():
    z = torch.zeros(1, 10, 3)
    z[0, 5, 0] = z[0, 2, 1] = z[0, 9, 2] = 1.0  # one spike per neuron
    g = replay_noise(0, 1, 1, "cpu")
    assert torch.equal(spike_jitter(z, 0, "spikes", g), z)
    for _ in range(20):
        moved = spike_jitter(z, 2, "spikes", g)
        steps = moved[0].argmax(dim=0).tolist()
        assert moved.sum() == 3 and abs(steps[0] - 5) <= 2 and abs(steps[1] - 2) <= 2 and steps[2] in (7, 8, 9)
    both = torch.zeros(1, 3, 1)
    both[0, 0, 0] = both[0, 2, 0] = 1.0
    merged = [spike_jitter(both, 1, "spikes", g).max().item() for _ in range(30)]
    assert max(merged) == 1.0  # spikes meeting at one step count once


class Seen(Plugin):
    """Records the classes and the replayed mask of every minibatch trained (here: the phase's only)."""

    def __init__(self):
        self.batches = []

    def loss(self, ctx, batch, out):
        self.batches.append((batch.labels.tolist(), batch.replayed.tolist()))


@pytest.mark.parametrize("include_new", [True, False])
def test_the_phase_rehearses_the_buffer_and_with_include_new_the_task_s_samples(include_new):
    seen = Seen()
    ctx = context()
    strategy(0, sleep=sleep(epochs=1, include_new=include_new), seen=seen).learn(ctx, 1)
    labels = [y for ys, _ in seen.batches for y in ys]
    replayed = [r for _, rs in seen.batches for r in rs]
    new_class = ctx.tasks[1].classes[0]
    assert (new_class in labels) == include_new
    assert all(r == (y != new_class) for y, r in zip(labels, replayed))
    counts = np.bincount(labels)
    assert len(set(counts[counts > 0])) == 1  # every class m times (m: the largest class's count)
