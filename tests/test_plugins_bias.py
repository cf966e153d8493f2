"""Bias correction: a factor on the new classes' scores, fitted by cross-entropy on held-out samples."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Plugin, Strategy
from spikecl.cl.plugins import BiasCorrection, Replay
from spikecl.cl.plugins.bias import fit_scale, held_out
from spikecl.errors import ConfigError
from spikecl.models import class_scores
from tests.factories import readout_plugin, replay_plugin, shipped_plugin
from tests.plugin_context import toy_context


def test_the_fitted_factor_by_hand():
    # class 1 is new. Sample A (class 0) scores [2, 2], sample B (class 1) [0, 2]. With a on class 1:
    # CE = log(1 + e^(2a - 2)) + log(1 + e^(-2a)); its derivative vanishes where 2a - 2 = -2a: a = 1/2.
    scores = torch.tensor([[2.0, 2.0], [0.0, 2.0]])
    assert fit_scale(scores, torch.tensor([0, 1]), new=[1], seen=[0, 1]) == pytest.approx(0.5, abs=1e-6)


def test_only_the_seen_classes_count_and_a_separable_set_stays_bounded():
    scores = torch.tensor([[2.0, 2.0, 50.0], [0.0, 2.0, 50.0]])  # class 2 is not seen yet: ignored
    assert fit_scale(scores, torch.tensor([0, 1]), new=[1], seen=[0, 1]) == pytest.approx(0.5, abs=1e-6)
    separable = torch.tensor([[3.0, 0.0], [0.0, 2.0]])  # a larger a only ever helps: the bound
    assert fit_scale(separable, torch.tensor([0, 1]), new=[1], seen=[0, 1]) == pytest.approx(100.0)


def test_held_out_takes_per_class_at_most_half():
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    chosen = held_out(labels, 3, np.random.default_rng(0))
    assert np.bincount(labels[chosen], minlength=3).tolist() == [2, 1, 0]


class Rows(Plugin):
    """Records the (source, position) of every row the loop trains on."""

    def __init__(self):
        self.rows = []

    def loss(self, ctx, batch, scores):
        for p in batch.pieces:
            self.rows += [(id(p.source), int(i)) for i in p.idx]


def test_held_out_samples_never_train_and_the_factor_scales_the_new_scores_exactly():
    ctx = toy_context()
    rows = Rows()
    bias = BiasCorrection(holdout=2)
    plugins = {"readout": readout_plugin(), "replay": replay_plugin("latent", 16, 0, "mixed"), "bias": bias,
               "rows": rows}
    s = Strategy(name="t", latent_depth=1, epochs=2, lr=1e-2, batch_size=8, plugins=plugins,
                 optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))
    captured = {}
    original = bias.after_task

    def spy(ctx, task):  # the scores just before the correction, on every sample of the task
        with torch.no_grad():
            captured["before"] = class_scores(ctx.model.from_latent(ctx.new.entry(np.arange(len(ctx.new))), 1))
        original(ctx, task)
        with torch.no_grad():
            captured["after"] = class_scores(ctx.model.from_latent(ctx.new.entry(np.arange(len(ctx.new))), 1))

    bias.after_task = spy
    s.learn(ctx, 1)
    replay = s.plugin(Replay)
    assert len(bias.held_buffer) == 2 * 3 and len(bias.held_new) == 2  # 2 of each old class, 2 of class 3
    trained = set(rows.rows)
    assert not {(id(replay.source), int(i)) for i in bias.held_buffer} & trained
    assert not {(id(ctx.new), int(i)) for i in bias.held_new} & trained
    assert {(id(ctx.new), i) for i in range(len(ctx.new)) if i not in bias.held_new} <= trained
    a = bias.factors[0]
    assert a != 1.0
    assert torch.allclose(captured["after"][:, 3], a * captured["before"][:, 3], rtol=1e-5, atol=1e-6)
    assert torch.equal(captured["after"][:, :3], captured["before"][:, :3])


def test_bias_correction_refuses_what_trains_on_its_held_out_samples():
    def build(**plugins):
        return Strategy(name="t", latent_depth=1, epochs=1, lr=1e-2, batch_size=8,
                        plugins={"replay": replay_plugin(), "bias": shipped_plugin("bias"), **plugins},
                        optimizer=partial(torch.optim.Adamax, lr=1e-2))

    for other in ("align", "consolidation", "gdumb"):
        with pytest.raises(ConfigError, match=r"\(BiasCorrection\) cannot run with"):
            build(other=shipped_plugin(other))
