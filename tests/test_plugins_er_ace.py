"""ER-ACE: the asymmetric cross-entropy, new rows over the incoming (and unseen) classes, replayed rows over every
class seen."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from spikecl.cl import Strategy
from spikecl.cl.minibatch import Batch
from spikecl.cl.plugins import ERACE
from spikecl.cl.plugins.er_ace import allowed_classes
from spikecl.errors import ConfigError
from tests.model_config import make_model
from tests.factories import replay_plugin, shipped_plugin
from tests.plugin_context import make_ctx, task

# Task 0 brought classes 0 and 1, task 1 (the incoming one) brings class 2; class 3 has not come yet.
TASKS = [task("pre", [0, 1]), task("new", [2]), task("later", [3])]


def criterion(scores, labels, replayed, tasks=TASKS, at=1):
    ctx = make_ctx(make_model(nb_inputs=6, hidden=[5, 4], nb_outputs=4), 1, tasks, task_index=at)
    batch = Batch(z=torch.zeros(len(labels), 1, 1), labels=torch.tensor(labels), replayed=torch.tensor(replayed),
                  spikes=torch.zeros(len(labels), 1, 1), depth=1)
    return ERACE().criterion(ctx, batch, scores)


def test_the_masked_cross_entropy_matches_a_hand_computation():
    scores = torch.tensor([[1.0, 2.0, 3.0, 0.5], [2.0, 1.0, 0.0, 9.0]], requires_grad=True)
    loss = criterion(scores, [2, 0], [False, True])
    new_row = math.log(math.exp(3.0) + math.exp(0.5)) - 3.0                          # classes 2 and 3 only
    replayed_row = math.log(math.exp(2.0) + math.exp(1.0) + math.exp(0.0)) - 2.0     # classes 0, 1, 2
    assert float(loss.detach()) == pytest.approx((new_row + replayed_row) / 2, rel=1e-6)
    loss.backward()
    assert scores.grad[0, :2].abs().sum() == 0   # the new sample never pushes an old class down
    assert scores.grad[1, 3] == 0                # nor does replay touch a class not seen yet
    assert scores.grad[1, 2] > 0                 # replay is where the new class meets the old ones


def test_the_masks_by_row():
    mask = allowed_classes(torch.tensor([False, True]), 4, incoming=[2], seen=[0, 1, 2])
    assert mask.tolist() == [[False, False, True, True], [True, True, True, False]]


def test_a_task_without_new_classes_is_the_plain_cross_entropy():
    tasks = [task("pre", [0, 1, 2, 3]), task("speaker", [0, 1, 2, 3])]
    scores = torch.tensor([[1.0, 2.0, 3.0, 0.5], [2.0, 1.0, 0.0, 9.0]])
    expected = torch.nn.functional.cross_entropy(scores, torch.tensor([2, 0]))
    assert float(criterion(scores, [2, 0], [False, True], tasks)) == pytest.approx(float(expected), rel=1e-6)


def test_er_ace_needs_replay_and_one_criterion():
    with pytest.raises(ConfigError, match="needs a Replay plugin"):
        Strategy(name="t", latent_depth=1, epochs=1, lr=1e-2, batch_size=8, plugins={"ace": ERACE()},
                 optimizer=partial(torch.optim.Adamax, lr=1e-2))
    with pytest.raises(ConfigError, match="both replace the loss"):
        Strategy(name="t", latent_depth=1, epochs=1, lr=1e-2, batch_size=8,
                 plugins={"replay": replay_plugin(), "ace": ERACE(), "der": shipped_plugin("der")},
                 optimizer=partial(torch.optim.Adamax, lr=1e-2))
