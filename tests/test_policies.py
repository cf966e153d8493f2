"""Storage policies on hand-made tasks: what each keeps, what it evicts, and how configs switch them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from spikecl.cl.policies import ClassBalanced, Growing, Reservoir
from spikecl.data import Task
from spikecl.errors import ConfigError


def task(name, train, labels):
    train = np.asarray(train, dtype=np.int64)
    return Task(name, sorted(set(labels[train].tolist())), train, np.zeros(0, dtype=np.int64))


def fill(policy, tasks, labels, seed=0):
    """Let every task but the last join a buffer as the replay plugin does; returns the stored ids."""
    stored = np.zeros(0, dtype=np.int64)
    policy.check(tasks)
    for t in range(len(tasks) - 1):
        add, evict = policy.admit(t, tasks, labels, stored, seed)
        stored = np.concatenate([np.delete(stored, evict), add])
        assert np.unique(stored).size == stored.size  # never a duplicate
        assert np.isin(add, tasks[t].train).all()      # only the task's train samples join
    return stored


# 3 pretraining classes of 10 samples each (ids 0..29), then class 3 (30..39), then class 4 (40..49)
LABELS = np.repeat(np.arange(5), 10)
TASKS = [task("pretrain", np.arange(30), LABELS), task("class 3", np.arange(30, 40), LABELS),
         task("class 4", np.arange(40, 50), LABELS), task("last", np.zeros(0, dtype=np.int64), LABELS)]


def test_growing_stores_capacity_then_growth_per_task_and_evicts_nothing():
    stored = fill(Growing(capacity=6, growth=2), TASKS, LABELS)
    counts = Counter(LABELS[stored].tolist())
    assert counts == {0: 2, 1: 2, 2: 2, 3: 2, 4: 2}  # class-balanced 6 of the pretraining task, then 2 + 2
    everything = fill(Growing(capacity=None, growth=None), TASKS, LABELS)
    assert sorted(everything.tolist()) == list(range(50))  # the cumulative bound: every train sample


def test_growing_selection_first_takes_the_first_samples_as_the_paper():
    stored = fill(Growing(capacity=4, growth=0, selection="first"), TASKS[:2], LABELS)
    assert stored.tolist() == [0, 1, 2, 3]


def test_class_balanced_shares_its_places_over_every_class_seen():
    # capacity 7: after pretraining 3 classes share 7 places (3 + 2 + 2, the extra one drawn at random);
    # after class 3 joins, 4 classes share them (2, 2, 2, 1 in some order); after class 4, 5 classes (2,2,1,1,1)
    policy = ClassBalanced(capacity=7, growth=0)
    stored = np.zeros(0, dtype=np.int64)
    expected = [[2, 2, 3], [1, 2, 2, 2], [1, 1, 1, 2, 2]]
    for t in range(3):
        add, evict = policy.admit(t, TASKS, LABELS, stored, seed=0)
        stored = np.concatenate([np.delete(stored, evict), add])
        assert sorted(Counter(LABELS[stored].tolist()).values()) == expected[t]
        assert len(stored) == 7


def test_class_balanced_grows_by_growth_per_learned_task():
    stored = fill(ClassBalanced(capacity=6, growth=2), TASKS, LABELS)
    assert len(stored) == 6 + 2 * 2 and sorted(Counter(LABELS[stored].tolist()).values()) == [2, 2, 2, 2, 2]


def test_class_balanced_needs_a_place_for_every_class():
    with pytest.raises(ConfigError, match="every class needs at least one place"):
        ClassBalanced(capacity=4, growth=0).check(TASKS)
    ClassBalanced(capacity=3, growth=1).check(TASKS)  # 3 places for 3 classes, 4 for 4, 5 for 5


def test_reservoir_keeps_the_samples_with_the_smallest_keys_among_those_seen():
    policy = Reservoir(capacity=8, growth=0)
    keys = np.random.default_rng([3, 7]).random(len(LABELS))  # the reservoir stream of seed 3
    stored = np.zeros(0, dtype=np.int64)
    for t in range(3):
        add, evict = policy.admit(t, TASKS, LABELS, stored, seed=3)
        stored = np.concatenate([np.delete(stored, evict), add])
        seen = np.concatenate([TASKS[i].train for i in range(t + 1)])
        assert sorted(stored.tolist()) == sorted(seen[np.argsort(keys[seen])[:8]].tolist())


def test_reservoir_gives_every_sample_seen_the_same_chance():
    # two tasks of 50 samples, 20 places: each sample is stored with probability 0.2 whichever task brought it
    labels = np.zeros(100, dtype=np.int64)
    tasks = [task("a", np.arange(50), labels), task("b", np.arange(50, 100), labels), task("c", [], labels)]
    hits = np.zeros(100)
    for seed in range(300):
        hits[fill(Reservoir(capacity=20, growth=0), tasks, labels, seed)] += 1
    rate = hits / 300
    assert abs(rate[:50].mean() - 0.2) < 0.02 and abs(rate[50:].mean() - 0.2) < 0.02


def test_a_policy_is_chosen_by_its_target_and_keeps_the_configured_sizes():
    from spikecl.api import compose
    from spikecl.build import build_setup

    for option, kind in (("growing", Growing), ("class_balanced", ClassBalanced), ("reservoir", Reservoir)):
        setup = build_setup(compose([f"policy={option}"]))
        policy = setup.strategy.plugins["replay"].policy
        assert type(policy) is kind and policy.capacity == 796  # the progressive default's size


def test_an_old_buffer_key_names_its_new_place():
    from spikecl.api import compose

    with pytest.raises(ConfigError, match="strategy.plugins.replay.buffer_size is a key of an earlier spikecl; "
                                          "it is now strategy.plugins.replay.policy.capacity"):
        compose(["strategy.plugins.replay.buffer_size=64"])
