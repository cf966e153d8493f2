"""Continual-learning strategies: the paper's equivalences, buffer hygiene, cached latents, mixing."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl.sources import CachedLatents, RawSource
from spikecl.cl.strategies import Context, LatentReplay, Naive, Rehearsal
from spikecl.data import make_tasks
from spikecl.engine import plan_epoch
from spikecl.models.lif import RSNN
from tests.factories import clustered_dataset


def make_ctx(split=None, seed=0, ratio=1, codec="or_impulse", input_codec="sum_impulse"):
    data = clustered_dataset()
    split = split or {"name": "class_incremental", "new_class": 3}
    tasks = make_tasks(data, split, "merged", 0.25, seed)
    torch.manual_seed(seed)
    model = RSNN(nb_inputs=24, hidden=[16, 12, 8], nb_outputs=4, weight_scale=5.0)
    epochs = []
    return Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"),
                   compression={"ratio": ratio, "codec": codec, "input_codec": input_codec,
                                "current_dtype": "float32"},
                   seed=seed, on_epoch=lambda *a: epochs.append(a)), epochs


def strategy(cls, **kw):
    args = dict(name=cls.__name__.lower(), latent_depth=None, epochs=2, lr=1e-2, batch_size=8, buffer_size=16,
                selection="class_balanced", mix="sequential", replay_per_new_class=4,
                reinit_new_class_readout=True, optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))
    args.update(kw)
    return cls(**args)


def train(ctx, s):
    s.setup(ctx)
    for i in range(1, len(ctx.tasks)):
        s.learn(ctx, i)
    return [p.detach().clone() for p in ctx.model.parameters()]


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("mix", ["sequential", "mixed"])
def test_uncompressed_latent_replay_equals_rehearsal_through_frozen_layers(depth, mix):
    # seed-spec 3.0: replaying stored activity at depth d is exactly replaying the raw inputs of the same
    # samples through the frozen layers below d, in the same order with the same seed.
    ctx_a, _ = make_ctx()
    ctx_b, _ = make_ctx()
    lr_weights = train(ctx_a, strategy(LatentReplay, latent_depth=depth, mix=mix))
    rehearsal_weights = train(ctx_b, strategy(Rehearsal, latent_depth=depth, mix=mix))
    initial = make_ctx()[0].model
    assert any(not torch.equal(w, p) for w, p in zip(lr_weights, initial.parameters())), "nothing was trained"
    for a, b in zip(lr_weights, rehearsal_weights):
        assert torch.equal(a, b)


@pytest.mark.parametrize("depth", [1, 2])
def test_ratio_one_equals_no_compression_and_compression_changes_training(depth):
    base = train(make_ctx(ratio=1)[0], strategy(LatentReplay, latent_depth=depth))
    again = train(make_ctx(ratio=1, codec="count_spread")[0], strategy(LatentReplay, latent_depth=depth))
    assert all(torch.equal(a, b) for a, b in zip(base, again))  # every codec is the identity at 1:1
    compressed = train(make_ctx(ratio=4)[0], strategy(LatentReplay, latent_depth=depth))
    assert any(not torch.equal(a, b) for a, b in zip(base, compressed))


def test_frozen_layers_do_not_change():
    ctx, _ = make_ctx()
    before = [p.detach().clone() for p in ctx.model.parameters()]
    after = train(ctx, strategy(LatentReplay, latent_depth=2))
    names = [n for n, _ in ctx.model.named_parameters()]
    for n, b, a in zip(names, before, after):
        if n in ("w.0", "w.1", "v.0", "v.1"):
            assert torch.equal(a, b), n
    assert all(p.requires_grad for p in ctx.model.parameters())  # restored after the phase


def test_cached_latents_equal_recomputed():
    ctx, _ = make_ctx()
    idx = ctx.tasks[1].train
    for depth in range(4):
        cached = CachedLatents(ctx.model, ctx.data.spikes, idx, ctx.data.labels, depth, ctx.device, batch_size=5)
        fresh = RawSource(ctx.model, ctx.data.spikes, idx, ctx.data.labels, depth, ctx.device)
        with torch.no_grad():
            assert torch.equal(cached.entry(np.arange(len(idx))).float(), fresh.entry(np.arange(len(idx))))


@pytest.mark.parametrize("cls,depth", [(Rehearsal, None), (LatentReplay, 1)])
def test_buffer_holds_only_pretraining_train_samples_without_duplicates(cls, depth):
    ctx, _ = make_ctx(split={"name": "progressive", "old_classes": [0, 1], "new_classes": [2, 3]})
    s = strategy(cls, latent_depth=depth, buffer_size=10_000)
    train(ctx, s)
    ids = s.buffer.sample_ids
    assert len(np.unique(ids)) == len(ids)
    tests = np.concatenate([t.test for t in ctx.tasks])
    assert not np.isin(ids, tests).any()
    # all pretraining train samples, plus replay_per_new_class of the first new class (the last adds none)
    expected = len(ctx.tasks[0].train) + 4
    assert len(s.buffer) == expected
    assert np.isin(ids, np.concatenate([ctx.tasks[0].train, ctx.tasks[1].train])).all()


def test_naive_trains_everything_and_reinitialises_the_new_readout_column():
    ctx, epochs = make_ctx()
    w_out = ctx.model.w_out.detach().clone()
    s = strategy(Naive, buffer_size=0, replay_per_new_class=0, epochs=0)
    train(ctx, s)
    col = ctx.model.w_out[:, 3].detach()
    assert not torch.equal(col, w_out[:, 3]) and torch.equal(ctx.model.w_out[:, :3], w_out[:, :3])
    assert abs(col.mean().item() - 0.003) < 0.01
    assert s.buffer is None and epochs == []


def test_epoch_plans_cover_every_sample_once():
    rng = np.random.default_rng(0)

    class Src:
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

    new, rep = Src(21), Src(10)
    for mix in ("sequential", "interleaved", "mixed"):
        plan = plan_epoch(new, rep, 8, mix, rng)
        got_new = np.concatenate([p.idx for b in plan for p in b if p.source is new])
        got_rep = np.concatenate([p.idx for b in plan for p in b if p.source is rep])
        assert sorted(got_new) == list(range(21)) and sorted(got_rep) == list(range(10))
        if mix == "mixed":
            assert all(len(b) == 2 for b in plan)  # every minibatch holds new and replayed samples
        else:
            assert all(len(b) == 1 for b in plan)
    seq = plan_epoch(new, rep, 8, "sequential", rng)
    assert [b[0].source is new for b in seq] == [True] * 3 + [False] * 2
