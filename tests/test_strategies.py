"""The continual-learning loop and its built-in plugins: the paper's equivalences, buffer hygiene, cached
latents, mixing, hook order."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Context, Plugin, Strategy
from spikecl.cl.compression import Compression
from spikecl.cl.plugins import replay as replay_module
from spikecl.cl.plugins.replay import mix_in
from spikecl.cl.sources import CachedLatents, RawSource
from spikecl.data import ClassIncremental, Partition, Progressive
from spikecl.cl.minibatch import Piece, minibatches
from spikecl.errors import ConfigError
from tests.factories import clustered_dataset, readout_plugin, replay_plugin
from tests.model_config import make_model


def make_ctx(split=None, seed=0, ratio=1, codec="or_impulse", input_codec="sum_impulse"):
    data = clustered_dataset()
    tasks = (split or ClassIncremental(new_class=3)).tasks(data, Partition("merged", 0.25), seed)
    torch.manual_seed(seed)
    model = make_model(nb_inputs=24, hidden=[16, 12, 8], nb_outputs=4, weight_scale=5.0)
    epochs = []
    compression = Compression(ratio=ratio, codec=codec, input_codec=input_codec, current_dtype="float32")
    return Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"), compression=compression,
                   seed=seed, on_epoch=lambda *a: epochs.append(a)), epochs


def strategy(stores=None, latent_depth=None, epochs=2, buffer_size=16, replay_per_new_class=4, mix="sequential",
             **extra_plugins):
    plugins = {"readout": readout_plugin()}
    if stores is not None:
        plugins["replay"] = replay_plugin(stores, buffer_size, replay_per_new_class, mix)
    plugins.update(extra_plugins)
    return Strategy(name="test", latent_depth=latent_depth, epochs=epochs, lr=1e-2, batch_size=8, plugins=plugins,
                    optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))


def train(ctx, s):
    for i in range(1, len(ctx.tasks)):
        s.learn(ctx, i)
    return [p.detach().clone() for p in ctx.model.parameters()]


@pytest.mark.trained_figures
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("mix", ["sequential", "mixed"])
def test_uncompressed_latent_replay_equals_rehearsal_through_frozen_layers(depth, mix):
    # seed-spec 3.0: replaying stored activity at depth d is exactly replaying the raw inputs of the same
    # samples through the frozen layers below d, in the same order with the same seed.
    ctx_a, _ = make_ctx()
    ctx_b, _ = make_ctx()
    lr_weights = train(ctx_a, strategy("latent", latent_depth=depth, mix=mix))
    rehearsal_weights = train(ctx_b, strategy("raw", latent_depth=depth, mix=mix))
    initial = make_ctx()[0].model
    assert any(not torch.equal(w, p) for w, p in zip(lr_weights, initial.parameters())), "nothing was trained"
    for a, b in zip(lr_weights, rehearsal_weights):
        assert torch.equal(a, b)


@pytest.mark.trained_figures
@pytest.mark.parametrize("depth", [1, 2])
def test_ratio_one_equals_no_compression_and_compression_changes_training(depth):
    base = train(make_ctx(ratio=1)[0], strategy("latent", latent_depth=depth))
    again = train(make_ctx(ratio=1, codec="count_spread")[0], strategy("latent", latent_depth=depth))
    assert all(torch.equal(a, b) for a, b in zip(base, again))  # every codec is the identity at 1:1
    compressed = train(make_ctx(ratio=4)[0], strategy("latent", latent_depth=depth))
    assert any(not torch.equal(a, b) for a, b in zip(base, compressed))


def test_frozen_layers_do_not_change():
    ctx, _ = make_ctx()
    before = [p.detach().clone() for p in ctx.model.parameters()]
    after = train(ctx, strategy("latent", latent_depth=2))
    names = [n for n, _ in ctx.model.named_parameters()]
    for n, b, a in zip(names, before, after):
        if n in ("w.0", "w.1", "v.0", "v.1"):
            assert torch.equal(a, b), n
    assert all(p.requires_grad for p in ctx.model.parameters())  # restored after the phase


@pytest.mark.trained_figures
def test_cached_latents_equal_recomputed():
    ctx, _ = make_ctx()
    idx = ctx.tasks[1].train
    for depth in range(4):
        cached = CachedLatents(ctx.model, ctx.data.spikes, idx, ctx.data.labels, depth, ctx.device, batch_size=5)
        fresh = RawSource(ctx.model, ctx.data.spikes, idx, ctx.data.labels, depth, ctx.device)
        with torch.no_grad():
            assert torch.equal(cached.entry(np.arange(len(idx))).float(), fresh.entry(np.arange(len(idx))))


@pytest.mark.parametrize("stores,depth", [("raw", None), ("latent", 1)])
def test_buffer_holds_only_pretraining_train_samples_without_duplicates(stores, depth):
    ctx, _ = make_ctx(split=Progressive(old_classes=[0, 1], new_classes=[2, 3]))
    s = strategy(stores, latent_depth=depth, buffer_size=10_000)
    train(ctx, s)
    buffer = s.plugins["replay"].buffer
    ids = buffer.sample_ids
    assert len(np.unique(ids)) == len(ids)
    tests = np.concatenate([t.test for t in ctx.tasks])
    assert not np.isin(ids, tests).any()
    # all pretraining train samples, plus replay_per_new_class of the first new class (the last adds none)
    expected = len(ctx.tasks[0].train) + 4
    assert len(buffer) == expected
    assert np.isin(ids, np.concatenate([ctx.tasks[0].train, ctx.tasks[1].train])).all()


def test_naive_trains_everything_and_reinitialises_the_new_readout_column():
    ctx, epochs = make_ctx()
    w_out = ctx.model.w_out.detach().clone()
    s = strategy(epochs=0)
    train(ctx, s)
    col = ctx.model.w_out[:, 3].detach()
    assert not torch.equal(col, w_out[:, 3]) and torch.equal(ctx.model.w_out[:, :3], w_out[:, :3])
    assert abs(col.mean().item() - 0.003) < 0.01
    assert "replay" not in s.plugins and epochs == []


def test_epoch_plans_cover_every_sample_once():
    rng = np.random.default_rng(0)

    class Src:
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

    new, rep = Src(21), Src(10)
    for mix in ("sequential", "interleaved", "mixed"):
        plan = mix_in([[Piece(new, b)] for b in minibatches(rng.permutation(21), 8)], rep, 8, mix, rng)
        got_new = np.concatenate([p.idx for b in plan for p in b if p.source is new])
        got_rep = np.concatenate([p.idx for b in plan for p in b if p.source is rep])
        assert sorted(got_new) == list(range(21)) and sorted(got_rep) == list(range(10))
        assert all(p.replayed == (p.source is rep) for b in plan for p in b)
        if mix == "mixed":
            assert all(len(b) == 2 for b in plan)  # every minibatch holds new and replayed samples
        else:
            assert all(len(b) == 1 for b in plan)
    seq = mix_in([[Piece(new, b)] for b in minibatches(np.arange(21), 8)], rep, 8, "sequential", rng)
    assert [b[0].source is new for b in seq] == [True] * 3 + [False] * 2


def test_replay_ratio_draws_a_fresh_share_of_the_buffer_each_epoch():
    # replay_ratio r: ceil(r * n_new) distinct buffer samples per epoch, redrawn every epoch; None or more
    # than the buffer holds replays all of it.
    class Src:
        def __len__(self):
            return 50

    new, rep = Src(), Src()
    rng = np.random.default_rng(0)
    drawn = []
    for _ in range(2):
        plan = mix_in([[Piece(new, np.arange(8))], [Piece(new, np.arange(8, 13))]], rep, 8, "mixed", rng, 13)
        got = np.concatenate([p.idx for b in plan for p in b if p.source is rep])
        assert len(got) == len(set(got.tolist())) == 13 and got.max() < 50
        assert all(len(b) == 2 for b in plan)  # half new, half replayed in every minibatch
        drawn.append(sorted(got.tolist()))
    assert drawn[0] != drawn[1]
    for n in (None, 80):
        plan = mix_in([[Piece(new, np.arange(8))]], rep, 8, "sequential", rng, n)
        assert sorted(np.concatenate([p.idx for b in plan for p in b if p.source is rep])) == list(range(50))


def test_replay_ratio_counts_the_epochs_new_samples(monkeypatch):
    ctx, _ = make_ctx()
    replay = replay_plugin("latent", capacity=30, growth=0, mix="mixed", replay_ratio=0.5)
    s = strategy(latent_depth=1, epochs=1, replay=replay)
    seen = []

    def spy(batches, source, batch_size, mix, rng, n_replay=None):
        seen.append((sum(len(p.idx) for b in batches for p in b), n_replay))
        return mix_in(batches, source, batch_size, mix, rng, n_replay)

    monkeypatch.setattr(replay_module, "mix_in", spy)
    s.learn(ctx, 1)
    (n_new, n_replay), = seen
    assert n_new == len(ctx.tasks[1].train) and n_replay == -(-n_new // 2)


@pytest.mark.parametrize("bad", [0, -1, "many", True])
def test_replay_ratio_must_be_positive(bad):
    with pytest.raises(ConfigError, match="replay_ratio"):
        replay_plugin("latent", replay_ratio=bad)

class Trace(Plugin):
    """Records every hook call and what the loss hook sees."""

    def __init__(self):
        self.calls, self.replayed = [], []

    def before_task(self, ctx, task):
        self.calls.append(("before_task", task))

    def before_epoch(self, ctx, task, epoch):
        self.calls.append(("before_epoch", task, epoch))

    def loss(self, ctx, batch, out):
        self.calls.append("loss")
        assert out.shape == (len(batch.labels), ctx.model.nb_outputs) and batch.z.shape[0] == len(batch.labels)
        self.replayed.append(batch.replayed.clone())
        return None

    def after_backward(self, ctx, task):
        assert any(p.grad is not None for p in ctx.trainable)
        self.calls.append("after_backward")

    def after_epoch(self, ctx, task, epoch):
        self.calls.append(("after_epoch", task, epoch))

    def after_task(self, ctx, task):
        self.calls.append(("after_task", task))


def test_hooks_run_in_order_and_the_loss_hook_sees_replayed_samples():
    ctx, _ = make_ctx()
    trace = Trace()
    s = strategy("latent", latent_depth=1, epochs=2, mix="mixed", trace=trace)
    s.learn(ctx, 1)
    calls = [c if isinstance(c, str) else c[0] for c in trace.calls]
    assert calls[0] == "before_task" and calls[-1] == "after_task"
    assert calls[1] == "before_epoch" and calls.count("before_epoch") == calls.count("after_epoch") == 2
    assert calls.count("loss") == calls.count("after_backward") > 0
    assert calls[calls.index("loss") + 1] == "after_backward"
    replayed = torch.cat(trace.replayed)
    # every epoch: all new samples once, all buffered samples once
    assert int((~replayed).sum()) == 2 * len(ctx.tasks[1].train) and int(replayed.sum()) == 2 * 16


class Pull(Plugin):
    """A loss term that pulls the readout towards zero: training must feel it."""

    def loss(self, ctx, batch, out):
        return 10.0 * ctx.model.w_out.square().sum()


@pytest.mark.trained_figures
def test_a_plugin_loss_term_changes_training():
    base, pulled = make_ctx()[0], make_ctx()[0]
    train(base, strategy("latent", latent_depth=1))
    train(pulled, strategy("latent", latent_depth=1, pull=Pull()))
    assert pulled.model.w_out.norm() < 0.99 * base.model.w_out.norm()


def test_a_strategy_rejects_a_plugin_of_another_kind():
    with pytest.raises(ConfigError, match="plugins.bad is a dict, not a spikecl.cl.Plugin"):
        Strategy(name="bad", latent_depth=None, epochs=1, lr=1e-3, batch_size=4, optimizer=torch.optim.SGD,
                 plugins={"bad": {}})


def test_a_plugin_set_to_null_is_left_out():
    from spikecl.api import compose
    from spikecl.build import build_strategy

    strategy = build_strategy(compose(["strategy.plugins.readout=null"]).strategy)
    assert list(strategy.plugins) == ["replay"]

