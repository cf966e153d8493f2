"""GDumb: after every task, a restart from the initial state and training on the buffer's samples alone."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Plugin, Strategy
from spikecl.cl.compression import Compression
from spikecl.cl.context import Context
from spikecl.cl.plugins import GDumb, Replay
from spikecl.data import Partition, Progressive
from spikecl.errors import ConfigError
from tests.model_config import make_model
from spikecl.utils import streams
from tests.factories import clustered_dataset, readout_plugin, replay_plugin


class Spy(Plugin):
    """Records, for every step, the data-set ids of its rows, whether they were replayed, and the weights
    the step started from."""

    def __init__(self):
        self.steps = []

    def loss(self, ctx, batch, scores):
        replay = ctx.plugin(Replay)
        ids = [replay.buffer.sample_ids[p.idx] if p.replayed else ctx.new_indices[p.idx] for p in batch.pieces]
        self.steps.append((ctx.task, bool(batch.replayed.all()), np.concatenate(ids),
                           {n: p.detach().clone() for n, p in ctx.model.named_parameters()}))


def progressive_context():
    data = clustered_dataset()
    tasks = Progressive(old_classes=[0, 1], new_classes=[2, 3]).tasks(data, Partition("merged", 0.25), 0)
    torch.manual_seed(0)
    model = make_model(nb_inputs=24, hidden=[16, 12, 8], nb_outputs=4, weight_scale=5.0)
    return Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"), seed=0,
                   compression=Compression(ratio=2, codec="or_impulse", input_codec="sum_impulse",
                                           current_dtype="float32"))


def gdumb_strategy(spy, epochs=2):
    plugins = {"readout": readout_plugin(), "gdumb": GDumb(epochs=epochs, lr_scale=1.0), "spy": spy,
               "replay": replay_plugin("latent", 12, 0, "mixed", policy="ClassBalanced")}
    return Strategy(name="gdumb", latent_depth=1, epochs=3, lr=1e-2, batch_size=4, plugins=plugins,
                    optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))


def test_gdumb_restarts_from_the_initial_weights_and_sees_only_buffer_samples(monkeypatch):
    ctx = progressive_context()
    pretrained = {n: p.detach().clone() for n, p in ctx.model.named_parameters()}
    spy = Spy()
    s = gdumb_strategy(spy)
    # the spy maps ctx.new's positions to data-set ids; any new-data row would show up in its records
    monkeypatch.setattr(Context, "new_indices", property(lambda c: c.tasks[c.task].train), raising=False)
    for t in (1, 2):
        s.learn(ctx, t)
    buffer = s.plugin(Replay).buffer
    for t in (1, 2):
        steps = [step for step in spy.steps if step[0] == t]
        assert steps and all(replayed for _, replayed, _, _ in steps)   # no stream sample ever trains
        # each epoch of the phase is one pass over the buffer as it was after the task's samples joined
        seen = np.concatenate([ids for _, _, ids, _ in steps])
        stored = np.concatenate([ctx.tasks[k].train for k in range(t + 1)])
        assert np.isin(seen, stored).all()
        assert len(seen) == 2 * len(np.unique(seen))
        # the first step starts from the initial state: the pretrained weights, each learned class's column
        # as the readout plugin drew it when the class arrived
        first = steps[0][3]
        expected = {n: v.clone() for n, v in pretrained.items()}
        for k in range(1, t + 1):
            column = torch.empty(8).normal_(0.003, 0.003, generator=streams.readout_columns(0, k))
            expected["w_out"][:, ctx.tasks[k].classes[0]] = column
        for name in expected:
            assert torch.equal(first[name], expected[name]), (t, name)
    assert len(buffer) == 12 and set(ctx.tasks[2].train) & set(buffer.sample_ids)  # the last task's joined


def test_gdumb_learns_from_the_buffer():
    ctx = progressive_context()
    s = gdumb_strategy(Spy(), epochs=5)
    start = ctx.model.w_out.detach().clone()
    s.learn(ctx, 1)
    assert not torch.equal(ctx.model.w_out[:, :3], start[:, :3])
    assert all(p.requires_grad for p in ctx.model.parameters())


def test_gdumb_needs_replay():
    with pytest.raises(ConfigError, match="needs a Replay plugin"):
        Strategy(name="t", latent_depth=1, epochs=1, lr=1e-2, batch_size=8, plugins={"g": GDumb(epochs=1, lr_scale=1.0)},
                 optimizer=partial(torch.optim.Adamax, lr=1e-2))
    with pytest.raises(ConfigError, match="epochs=0"):
        GDumb(epochs=0, lr_scale=1.0)
