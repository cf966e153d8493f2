"""DER++: the stored class scores, their squared-error term, the second buffer minibatch's cross-entropy."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Strategy
from spikecl.cl.minibatch import Batch, Piece
from spikecl.cl.plugins import DER, Replay, ShortTimeReplay
from spikecl.errors import ConfigError
from spikecl.models import class_scores
from tests.factories import readout_plugin, replay_plugin, shipped_plugin
from tests.plugin_context import TensorSource, toy_context


class FakeReplay(Replay):
    """A Replay whose buffer is a list of sample ids and whose source is a TensorSource (no real storage)."""

    def __init__(self, ids, source):
        self.buffer = type("Ids", (), {"sample_ids": np.asarray(ids)})()
        self.source = source


def der_with(stored_ids, stored_scores, alpha, beta, replay):
    der = DER(alpha=alpha, beta=beta)
    der.ids = np.asarray(stored_ids)
    der.scores = torch.tensor(stored_scores, dtype=torch.float16)
    ctx = toy_context()
    ctx.plugins = (replay, der)
    return der, ctx


def test_the_stored_score_term_is_alpha_times_the_mean_squared_difference():
    # buffer positions 0, 1, 2 hold data-set samples 30, 10, 20; the minibatch replays positions 2 and 0
    replay = FakeReplay([30, 10, 20], TensorSource(torch.zeros(3, 1, 1), [0, 1, 0]))
    der, ctx = der_with([10, 20, 30], [[9.0, 9.0], [0.5, 2.0], [3.0, 3.0]], alpha=2.0, beta=0.0, replay=replay)
    scores = torch.tensor([[7.0, 1.0], [1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    batch = Batch(z=torch.zeros(3, 1, 1), labels=torch.tensor([1, 0, 0]), replayed=torch.tensor([False, True, True]),
                  spikes=torch.zeros(3, 1, 1), depth=1,
                  pieces=[Piece(None, np.array([0])), Piece(replay.source, np.array([2, 0]), True)])
    term = der.loss(ctx, batch, scores)
    # rows 1, 2 are samples 20 and 30: stored [0.5, 2] and [3, 3]; differences 0.5, 0, 0, 1
    assert float(term.detach()) == pytest.approx(2.0 * (0.25 + 0.0 + 0.0 + 1.0) / 4)
    term.backward()
    assert scores.grad[0].abs().sum() == 0  # the new row takes no part in it


def test_the_new_rows_cross_entropy_replaces_the_mean_over_all_rows():
    der = DER(alpha=1.0, beta=1.0)
    scores = torch.tensor([[2.0, 0.0], [0.0, 5.0], [1.0, 1.0]])
    batch = Batch(z=torch.zeros(3, 1, 1), labels=torch.tensor([0, 0, 1]), replayed=torch.tensor([False, True, False]),
                  spikes=torch.zeros(3, 1, 1), depth=1)
    expected = (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2  # rows 0 and 2 only
    assert float(der.criterion(None, batch, scores)) == pytest.approx(expected, rel=1e-6)
    replay_only = Batch(z=torch.zeros(1, 1, 1), labels=torch.tensor([0]), replayed=torch.tensor([True]),
                        spikes=torch.zeros(1, 1, 1), depth=1)
    assert float(der.criterion(None, replay_only, scores[:1])) == 0.0


def test_the_second_minibatch_adds_beta_times_its_cross_entropy():
    steps = toy_context().data.spikes.nb_steps
    z = (torch.rand(4, steps, 16, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    replay = FakeReplay([5, 6, 7, 8], TensorSource(z, [0, 1, 2, 0]))
    der, ctx = der_with([5, 6, 7, 8], np.zeros((4, 4)), alpha=0.0, beta=0.5, replay=replay)
    ctx.latent_depth = 1
    der.rng = np.random.default_rng(3)
    drawn = np.random.default_rng(3).choice(4, size=2, replace=False)  # the same draw, to compute it by hand
    scores = class_scores(ctx.model.from_latent(z[:2], 1))
    batch = Batch(z=z[:2], labels=torch.tensor([0, 1]), replayed=torch.tensor([True, True]), spikes=torch.zeros(2, 1, 1),
                  depth=1, pieces=[Piece(replay.source, np.array([0, 1]), True)])
    expected = 0.5 * torch.nn.functional.cross_entropy(class_scores(ctx.model.from_latent(z[drawn], 1)),
                                                       torch.tensor([0, 1, 2, 0])[drawn])
    assert float(der.loss(ctx, batch, scores).detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def strategy(epochs=1, **plugins):
    return Strategy(name="t", latent_depth=1, epochs=epochs, lr=1e-2, batch_size=8,
                    plugins={"readout": readout_plugin(), "replay": replay_plugin("latent", 16, 0, "mixed"), **plugins},
                    optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))


def test_scores_are_stored_from_the_raw_input_and_counted_in_the_memory():
    # no epoch: the network when the task ends is the one that stored the scores (task 1's fresh column drawn)
    ctx = toy_context()
    s = strategy(epochs=0, der=shipped_plugin("der"))
    s.learn(ctx, 1)
    der, replay = s.plugin(DER), s.plugin(Replay)
    ids = np.sort(replay.buffer.sample_ids)
    spikes = ctx.data.spikes
    with torch.no_grad():
        expected = class_scores(ctx.model(spikes.csr(ids), spikes.nb_steps)).half()
    assert der.scores.dtype == torch.float16 and der.ids.tolist() == ids.tolist()
    assert torch.equal(der.scores, expected)
    figures = {**replay.figures(ctx), **der.figures(ctx)}
    assert figures["der_score_bytes"] == len(ids) * 4 * 2  # 4 classes, float16
    assert figures["buffer_bytes"] == replay.buffer.nbytes + len(ids) * 8
    assert figures["bytes_per_sample"] == pytest.approx(figures["buffer_bytes"] / len(ids))


def test_evicted_samples_lose_their_scores_and_the_state_round_trips():
    ctx = toy_context()
    s = strategy(der=shipped_plugin("der"))
    s.learn(ctx, 1)
    der = s.plugin(DER)
    replay = s.plugin(Replay)
    kept = replay.buffer.sample_ids[::2]
    replay.buffer.remove(np.arange(1, len(replay.buffer), 2))
    der.sync(ctx)
    assert der.ids.tolist() == sorted(kept.tolist()) and der.scores.shape[0] == len(kept)
    copy = DER(alpha=0.3, beta=0.5)
    copy.load_state_dict(der.state_dict())
    assert np.array_equal(copy.ids, der.ids) and torch.equal(copy.scores, der.scores)


def test_der_needs_replay_and_refuses_short_time_replay():
    with pytest.raises(ConfigError, match="needs a Replay plugin"):
        Strategy(name="t", latent_depth=1, epochs=1, lr=1e-2, batch_size=8, plugins={"der": shipped_plugin("der")},
                 optimizer=partial(torch.optim.Adamax, lr=1e-2))
    with pytest.raises(ConfigError, match=r"\(DER\) cannot run with .*ShortTimeReplay"):
        strategy(der=shipped_plugin("der"), short=shipped_plugin("short_replay"))
    assert ShortTimeReplay in DER.excludes
