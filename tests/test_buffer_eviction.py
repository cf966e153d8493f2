"""A fixed-size buffer shared class-balanced by every class seen: removal and balanced eviction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikecl.cl.policies import balanced_eviction
from spikecl.cl.storage import ReplayBuffer


def filled(n=6, width=13, steps=4):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, steps, width, generator=g) < 0.3).float()
    buf = ReplayBuffer("spikes", steps, width, ratio=2, codec="or_impulse")
    buf.add(x, labels=np.arange(n) % 3, sample_ids=np.arange(100, 100 + n))
    return buf, x


@pytest.mark.parametrize("which", [[4, 1], np.array([False, True, False, False, True, False]), torch.tensor([1, 4])])
def test_remove_keeps_activity_labels_and_ids_aligned(which):
    buf, x = filled()
    expected = buf.batch([0, 2, 3, 5])
    room = buf.capacity_nbytes
    buf.remove(which)
    assert len(buf) == 4 and buf.sample_ids.tolist() == [100, 102, 103, 105]
    z, labels = buf.batch(np.arange(4))
    assert torch.equal(z, expected[0]) and torch.equal(labels, expected[1]) and labels.tolist() == [0, 2, 0, 2]
    assert buf.nbytes == 4 * 2 * 2 and buf.capacity_nbytes == room  # 2 stored steps x 2 packed bytes
    buf.add(x[[1]], [1], [101])  # a removed id may come back; the freed room is reused
    assert buf.sample_ids.tolist() == [100, 102, 103, 105, 101] and buf.capacity_nbytes == room
    assert torch.equal(buf.batch([4])[0], filled()[0].batch([1])[0])


def test_remove_rejects_bad_positions_and_masks():
    buf, _ = filled()
    with pytest.raises(IndexError):
        buf.remove([6])
    with pytest.raises(ValueError, match="shape"):
        buf.remove(np.ones(5, dtype=bool))
    buf.remove([])
    assert len(buf) == 6


def counts_after(labels, evict, incoming):
    kept = np.delete(labels, evict)
    classes = np.union1d(labels, list(incoming))
    return {int(c): int((kept == c).sum()) + incoming.get(int(c), 0) for c in classes}


def test_a_new_class_takes_its_share_from_the_largest_classes():
    labels = np.repeat([0, 1, 2], [4, 4, 2])             # full buffer of 10: classes 4, 4, 2
    evict = balanced_eviction(labels, 10, {3: 2}, np.random.default_rng(0))
    # 4 classes in 10 places: 3, 3, 2, 2 -- classes 0 and 1 give one sample each, the small class keeps all
    assert counts_after(labels, evict, {3: 2}) == {0: 3, 1: 3, 2: 2, 3: 2}
    assert np.unique(labels[evict]).tolist() == [0, 1]


def test_nothing_is_evicted_while_everything_fits():
    labels = np.array([0, 0, 1])
    assert balanced_eviction(labels, 10, {2: 7}, np.random.default_rng(0)).size == 0
    assert balanced_eviction(np.zeros(0, dtype=np.int64), 4, {0: 4}, np.random.default_rng(0)).size == 0


def test_too_many_incoming_samples_are_an_error():
    with pytest.raises(ValueError, match="do not fit"):
        balanced_eviction(np.array([0, 1]), 3, {2: 4}, np.random.default_rng(0))


@pytest.mark.parametrize("seed", range(40))
def test_random_cases_keep_every_class_at_floor_or_ceil_of_its_share(seed):
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(1, 7))
    labels = rng.integers(0, classes, int(rng.integers(0, 60)))
    capacity = int(rng.integers(max(len(labels) // 2, 1), len(labels) + 5))
    new = classes + int(rng.integers(0, 2))  # sometimes a new class, sometimes more of a known one
    seen = len(np.union1d(labels, [new]))
    # the caller adds at most the share, often exactly it
    incoming = {new: capacity // seen if rng.random() < 0.5 else int(rng.integers(0, capacity // seen + 1))}
    evict = balanced_eviction(labels, capacity, incoming, np.random.default_rng(seed))
    assert np.array_equal(evict, np.unique(evict))  # sorted, distinct
    assert evict.size == 0 or 0 <= evict.min() <= evict.max() < len(labels)
    after = counts_after(labels, evict, incoming)
    before = counts_after(labels, np.zeros(0, dtype=np.int64), incoming)
    assert sum(after.values()) == min(capacity, sum(before.values()))
    evicted = {c for c in after if after[c] < before[c]}
    if evicted:  # evicted classes end at a common level (or one above); no class keeps more
        level = min(after[c] for c in evicted)
        assert all(after[c] in (level, level + 1) for c in evicted)
        assert all(after[c] <= level + 1 for c in after)
    low, high = capacity // len(after), -(-capacity // len(after))
    extra = capacity - low * len(after)  # classes that get ceil rather than floor
    if all(n >= low for n in before.values()) and sum(n >= high for n in before.values()) >= extra:
        # enough samples in every class for a balanced buffer: floor or ceil of capacity / classes each
        assert all(low <= n <= high for n in after.values())


def test_classes_short_of_their_share_keep_everything_and_the_others_share_the_rest():
    labels = np.repeat([0, 1, 2], [3, 3, 20])
    evict = balanced_eviction(labels, 11, {}, np.random.default_rng(0))
    assert counts_after(labels, evict, {}) == {0: 3, 1: 3, 2: 5}


def test_eviction_and_refill_store_only_what_the_caller_offers():
    """The caller offers train samples only; eviction never brings another sample into the buffer."""
    rng = np.random.default_rng(0)
    train_ids, test_ids = np.arange(0, 40), np.arange(40, 60)
    labels = np.arange(60) % 4
    buf = ReplayBuffer("spikes", 4, 5)
    first = train_ids[labels[train_ids] < 3][:12]
    buf.add(torch.zeros(12, 4, 5), labels[first], first)
    incoming = train_ids[labels[train_ids] == 3][:3]            # 12 places for 4 classes: 3 each
    evict = balanced_eviction(buf.labels.numpy(), 12, {3: len(incoming)}, rng)
    buf.remove(evict)
    buf.add(torch.zeros(3, 4, 5), labels[incoming], incoming)
    assert len(buf) == 12 and np.bincount(buf.labels.numpy()).tolist() == [3, 3, 3, 3]
    assert np.isin(buf.sample_ids, train_ids).all() and not np.isin(buf.sample_ids, test_ids).any()
