"""Replay with a class-balanced storage policy: a buffer of fixed total size shared by every class seen so far,
through the replay plugin and the loop."""

from __future__ import annotations

from collections import Counter
from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Context, Strategy
from spikecl.cl.compression import Compression
from spikecl.data import Partition, Progressive, Task
from spikecl.errors import ConfigError
from tests.factories import clustered_dataset, replay_plugin
from tests.model_config import make_model


def context(tasks=None):
    data = clustered_dataset()
    if tasks is None:  # classes 0, 1 pretrained, then 2, then 3; a validation part in every train portion
        tasks = Progressive(old_classes=[0, 1], new_classes=[2, 3]).tasks(data, Partition("merged", 0.25, 0.2), 0)
    torch.manual_seed(0)
    model = make_model(nb_inputs=24, hidden=[16, 12], nb_outputs=4, weight_scale=5.0)
    return Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"), seed=0,
                   compression=Compression(ratio=2, codec="or_impulse", input_codec="sum_impulse", current_dtype="float32"))


def strategy(replay):
    return Strategy(name="t", latent_depth=1, epochs=0, lr=1e-2, batch_size=8, plugins={"replay": replay},
                    optimizer=partial(torch.optim.Adamax, lr=1e-2))


def balanced(capacity):
    return replay_plugin("latent", capacity, 0, policy="ClassBalanced")


def counts(replay):
    return dict(sorted(Counter(replay.buffer.labels.tolist()).items()))


def test_every_class_seen_gets_its_share_of_the_capacity():
    ctx = context()
    replay = balanced(6)
    s = strategy(replay)
    s.learn(ctx, 1)
    assert counts(replay) == {0: 3, 1: 3}  # the pretraining task stores only its share: 6 / 2 classes
    s.learn(ctx, 2)
    assert counts(replay) == {0: 2, 1: 2, 2: 2}  # class 2 takes its share from the largest classes
    ids = replay.buffer.sample_ids
    assert len(np.unique(ids)) == len(ids)
    assert np.isin(ids, np.concatenate([ctx.tasks[0].train, ctx.tasks[1].train])).all()
    never = np.concatenate([t.test for t in ctx.tasks] + [t.val for t in ctx.tasks])
    assert len(never) and not np.isin(ids, never).any()  # never a test or validation sample


def test_an_uneven_share_is_floor_or_ceil():
    ctx = context()
    replay = balanced(7)
    s = strategy(replay)
    s.learn(ctx, 1)
    assert sorted(counts(replay).values()) == [3, 4]
    s.learn(ctx, 2)
    assert len(replay.buffer) == 7 and sorted(counts(replay).values()) == [2, 2, 3]


def test_a_known_class_brings_a_reservoir_share_of_its_new_samples():
    # Task 1 holds new samples of the pretrained classes (as the sample-incremental split): each class had 6
    # train samples before and brings 6, so half of its share of 4 places goes to the new samples.
    data = clustered_dataset()
    of = [np.flatnonzero(data.labels == c) for c in range(4)]
    none = np.zeros(0, dtype=np.int64)
    tasks = [Task("pre", [0, 1], np.sort(np.r_[of[0][:6], of[1][:6]]), none),
             Task("more", [0, 1], np.sort(np.r_[of[0][6:], of[1][6:]]), none),
             Task("c2", [2], of[2], none), Task("c3", [3], of[3], none)]
    ctx = context(tasks)
    replay = balanced(8)
    s = strategy(replay)
    s.learn(ctx, 1)
    s.learn(ctx, 2)
    assert counts(replay) == {0: 4, 1: 4}
    ids = replay.buffer.sample_ids
    for c in (0, 1):
        assert np.isin(ids, of[c][:6]).sum() == 2 and np.isin(ids, of[c][6:]).sum() == 2
    s.learn(ctx, 3)
    assert sorted(counts(replay).values()) == [2, 3, 3]


@pytest.mark.trained_figures
def test_the_same_seed_gives_the_same_buffer_and_a_checkpoint_keeps_it():
    a, b = context(), context()
    ra, rb = balanced(5), balanced(5)
    sa, sb = strategy(ra), strategy(rb)
    for t in (1, 2):
        sa.learn(a, t)
        sb.learn(b, t)
    assert np.array_equal(ra.buffer.sample_ids, rb.buffer.sample_ids)
    restored = balanced(5)
    restored.load_state_dict(ra.state_dict())
    strategy(restored).learn(a, 2)  # nothing new to store: the restored buffer as it was
    assert np.array_equal(restored.buffer.sample_ids, ra.buffer.sample_ids)
    assert torch.equal(restored.buffer.batch(np.arange(5))[0], ra.buffer.batch(np.arange(5))[0])


def test_a_capacity_below_the_number_of_classes_is_a_config_error():
    # the last task's samples never join the buffer: 3 places serve classes 0, 1 and 2, 2 do not
    strategy(balanced(3)).learn(context(), 1)
    with pytest.raises(ConfigError, match=r"capacity=2 \(growth=0\) gives 2 places for the 3 classes seen after task 1"):
        strategy(balanced(2)).learn(context(), 1)
    with pytest.raises(ConfigError, match="capacity=0"):
        balanced(0)


def test_the_growing_policy_grows_as_the_paper():
    ctx = context()
    replay = replay_plugin("latent", 10, 3)
    s = strategy(replay)
    s.learn(ctx, 1)
    s.learn(ctx, 2)
    assert counts(replay) == {0: 5, 1: 5, 2: 3}
