"""Storage policies: which train samples a replay buffer keeps, and which it lets go (``strategy.plugins.replay.policy``).

A policy is asked, each time a task's samples may join the buffer (lazily, at the start of the next task,
so the last task's samples are never needed), for an :class:`Admission`: the task's train samples to add
and the stored samples to evict first. Only ``tasks[t].train`` samples are eligible, never validation or
test ones. Every policy has the same two sizes, so a config can switch policies by their ``_target_``:

- ``capacity``: the most samples the buffer holds after the pretraining task's joined;
- ``growth``: how many places it gains with each learned task (0: a fixed size).

Shipped policies:

:class:`Growing` (the paper's)
    the pretraining task brings ``capacity`` samples chosen by ``selection``, every learned task
    ``growth`` more; nothing is ever evicted. None for both stores every train sample (the cumulative bound).
:class:`ClassBalanced`
    the buffer is shared class-balanced over every class seen so far: after tasks 0..t joined, each of the
    K classes of their train portions holds floor(N / K) or ceil(N / K) of the N = capacity + t * growth
    places (fewer only where a class has fewer train samples; their places go to the other classes). When
    task t's samples join, with share s = floor(N / K): a class new to the buffer brings s of its train
    samples, or s + 1 where one of the N - s K places of one more sample falls on it (the places are drawn
    among the K classes at random), chosen class-balanced over the task's new classes; a class already
    stored (a new speaker of known classes) brings round(s * n_t / (n_<t + n_t)) samples, n_t being its
    train samples in task t and n_<t those in earlier tasks, drawn at random, so every train sample of the
    class seen so far has about the same chance to be stored (as reservoir sampling would give); then
    :func:`balanced_eviction` evicts stored samples, at random within a class, from the largest classes
    only, down to the common level. The pretraining task stores its share too: floor(N / K_0) of each of its
    K_0 classes, N in all.
:class:`Reservoir`
    every train sample seen so far has the same chance to be stored, whatever its class (reservoir
    sampling): each sample carries a uniform random key, drawn once per data set and seed, and the buffer
    holds the N samples with the smallest keys among those seen.

Random streams: :mod:`spikecl.utils.streams` (``buffer_selection``, ``eviction``, ``reservoir``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from spikecl.data import Task
from spikecl.errors import ConfigError
from spikecl.utils import checks, streams

log = logging.getLogger(__name__)

SELECTIONS = ("class_balanced", "random", "first")


class Admission(NamedTuple):
    """What a buffer does when a task's samples may join: evict the stored samples at positions ``evict``
    (into the buffer's current order), then add the data-set samples ``add`` in this order."""

    add: np.ndarray
    evict: np.ndarray


class StoragePolicy:
    """Base class of storage policies (see the module docstring); subclasses implement :meth:`admit`.

    Args:
        capacity: the most samples held after the pretraining task's joined (None: no limit, where allowed).
        growth: places gained with each learned task.
    """

    def __init__(self, *, capacity: int | None, growth: int | None) -> None:
        self.capacity = None if capacity is None else checks.integer("capacity", capacity, 1)
        self.growth = None if growth is None else checks.integer("growth", growth, 0)
        if self.capacity is None or self.growth is None:
            raise ConfigError(f"capacity={capacity!r}, growth={growth!r} is not valid for {type(self).__name__}; "
                              "both must be integers (only Growing stores everything with null)")

    def size_after(self, task: int) -> int:
        """The most samples the buffer holds once tasks 0..``task`` joined."""
        return self.capacity + self.growth * task

    def check(self, tasks: Sequence[Task]) -> None:
        """ConfigError if the policy cannot serve these tasks (called before the first one joins)."""

    def admit(self, task: int, tasks: Sequence[Task], labels: np.ndarray, stored: np.ndarray,
              seed: int) -> Admission:
        """What to evict and add when the train samples of ``task`` may join a buffer that holds the data-set
        samples ``stored`` (in storage order); ``labels`` are every data-set sample's class."""
        raise NotImplementedError


class Growing(StoragePolicy):
    """The paper's growing buffer (see the module docstring).

    Args:
        capacity: samples of the pretraining task (None: all of its train samples).
        growth: samples of each learned task (None: all of them).
        selection: ``class_balanced``, ``random`` or ``first`` (the paper's "first k batches").
    """

    def __init__(self, *, capacity: int | None, growth: int | None, selection: str = "class_balanced") -> None:
        self.capacity = None if capacity is None else checks.integer("capacity", capacity, 0)
        self.growth = None if growth is None else checks.integer("growth", growth, 0)
        self.selection = checks.one_of("selection", selection, SELECTIONS)

    def admit(self, task: int, tasks: Sequence[Task], labels: np.ndarray, stored: np.ndarray,
              seed: int) -> Admission:
        pool = tasks[task].train
        size = self.capacity if task == 0 else self.growth
        size = len(pool) if size is None else size
        if task == 0 and size > len(pool):
            log.info("capacity=%d exceeds the %d pretraining train samples: storing all of them", size, len(pool))
        chosen = select_samples(labels, pool, size, self.selection, streams.buffer_selection(seed, task))
        return Admission(chosen, np.zeros(0, dtype=np.int64))


class ClassBalanced(StoragePolicy):
    """A buffer of ``capacity`` (+ ``growth`` per learned task) samples shared class-balanced over every
    class seen so far (see the module docstring)."""

    def check(self, tasks: Sequence[Task]) -> None:
        seen: set[int] = set()
        for t, task in enumerate(tasks[:-1]):
            seen |= set(task.classes)
            if self.size_after(t) < len(seen):
                raise ConfigError(f"capacity={self.capacity} (growth={self.growth}) gives {self.size_after(t)} "
                                  f"places for the {len(seen)} classes seen after task {t}; every class needs at "
                                  "least one place in the buffer: raise capacity")

    def admit(self, task: int, tasks: Sequence[Task], labels: np.ndarray, stored: np.ndarray,
              seed: int) -> Admission:
        labels = np.asarray(labels)
        capacity = self.size_after(task)
        pool = np.asarray(tasks[task].train, dtype=np.int64)
        earlier = np.concatenate([np.asarray(tasks[t].train, dtype=np.int64) for t in range(task)] or
                                 [np.zeros(0, dtype=np.int64)])
        if not len(pool):
            return Admission(pool, np.zeros(0, dtype=np.int64))
        before = Counter(labels[earlier].tolist())
        pool_labels = labels[pool]
        seen = np.union1d(labels[earlier], pool_labels)
        share = capacity // len(seen)
        rng = streams.buffer_selection(seed, task)
        fresh = np.isin(pool_labels, [c for c in np.unique(pool_labels) if before[int(c)] == 0])
        n_fresh = len(np.unique(pool_labels[fresh]))
        # The capacity % classes places of one more sample fall on classes drawn at random: those that fall
        # on new classes come with them, eviction gives the others to stored classes.
        spare = capacity - share * len(seen)
        spare_new = int(rng.hypergeometric(n_fresh, len(seen) - n_fresh, spare)) if spare and n_fresh else 0
        parts = [select_samples(labels, pool[fresh], share * n_fresh + spare_new, "class_balanced", rng)]
        for c in np.unique(pool_labels[~fresh]):  # classes already stored: a reservoir-like share
            members = pool[pool_labels == c]
            quota = round(share * len(members) / (before[int(c)] + len(members)))
            parts.append(select_samples(labels, members, quota, "class_balanced", rng))
        chosen = np.sort(np.concatenate(parts))
        evict = balanced_eviction(labels[stored], capacity, Counter(labels[chosen].tolist()),
                                  streams.eviction(seed, task))
        return Admission(chosen, evict)


class Reservoir(StoragePolicy):
    """Reservoir sampling: the ``capacity`` (+ ``growth`` per learned task) train samples with the smallest
    random keys among those seen so far (see the module docstring)."""

    def admit(self, task: int, tasks: Sequence[Task], labels: np.ndarray, stored: np.ndarray,
              seed: int) -> Admission:
        keys = streams.reservoir(seed).random(len(labels))  # one key per data-set sample, fixed by the seed
        pool = np.asarray(tasks[task].train, dtype=np.int64)
        candidates = np.concatenate([stored, pool])
        keep = np.zeros(candidates.size, dtype=bool)
        keep[np.argsort(keys[candidates], kind="stable")[:self.size_after(task)]] = True
        return Admission(np.sort(pool[keep[len(stored):]]), np.flatnonzero(~keep[:len(stored)]))


def select_samples(labels: np.ndarray, candidates: np.ndarray, size: int, selection: str,
                   rng: np.random.Generator) -> np.ndarray:
    """Pick ``size`` distinct entries of ``candidates`` (indices into ``labels``) for a replay buffer.

    ``first`` takes the first ``size`` candidates (the paper). ``random`` draws uniformly. ``class_balanced``
    gives each class of ``labels[candidates]`` an equal share; a class with fewer candidates gives all it
    has and the rest is shared among the others; the remainder of an uneven split goes to the classes with
    the most candidates, ties broken at random; within a class the samples are drawn at random. The result keeps the order of ``candidates``.
    ``size >= len(candidates)`` returns all candidates.
    """
    if selection not in SELECTIONS:
        raise ConfigError(f"selection={selection!r} is not supported; allowed: {', '.join(SELECTIONS)}")
    candidates = np.asarray(candidates, dtype=np.int64)
    if np.unique(candidates).size != candidates.size:
        raise ValueError("candidates must be distinct sample indices")
    if size < 0:
        raise ConfigError(f"capacity={size} must be >= 0")
    if size >= candidates.size:
        return candidates.copy()
    if selection == "first":
        return candidates[:size].copy()
    keep = np.zeros(candidates.size, dtype=bool)
    if selection == "random":
        keep[rng.choice(candidates.size, size=size, replace=False)] = True
        return candidates[keep]
    cand_labels = np.asarray(labels)[candidates]
    classes, counts = np.unique(cand_labels, return_counts=True)
    # Fill the smallest classes first; ties (and so the remainder) in random order.
    order = np.lexsort((rng.permutation(classes.size), counts))
    quota = np.zeros(classes.size, dtype=np.int64)
    left = size
    for rank, k in enumerate(order):
        quota[k] = min(counts[k], left // (classes.size - rank))
        left -= quota[k]
    for k, cls in enumerate(classes):
        members = np.flatnonzero(cand_labels == cls)
        keep[rng.choice(members, size=quota[k], replace=False)] = True
    return candidates[keep]


def balanced_eviction(labels: np.ndarray, capacity: int, incoming: Mapping[int, int],
                      rng: np.random.Generator) -> np.ndarray:
    """Positions of stored samples to evict so that a buffer of ``capacity`` samples stays class-balanced.

    ``labels`` are the classes of the stored samples, ``incoming`` the number of samples of each class the
    caller adds next. Eviction takes from the largest classes (stored plus incoming) only, down to a common
    level: afterwards, with the incoming samples added, the buffer holds ``capacity`` samples (or fewer,
    when everything fits and nothing is evicted) and every class of the stored or incoming ones holds
    floor or ceil of ``capacity / classes``, the classes getting the extra one drawn at random. Incoming
    samples are never evicted: a class that brings more than its share keeps them all and the others share
    the rest, so the caller adds at most ``capacity // classes`` (or one more) samples of a class to keep the
    buffer exactly balanced; a class with fewer samples than its share keeps them all too. Which samples of
    a class go is drawn at random. Returns sorted positions into ``labels``; which samples are eligible for
    a buffer at all (train samples only, never test or validation ones) is the caller's choice.
    """
    labels = np.asarray(labels, dtype=np.int64)
    incoming = {int(c): int(n) for c, n in incoming.items() if n}
    if any(n < 0 for n in incoming.values()) or capacity < 0:
        raise ValueError(f"need capacity >= 0 and incoming counts >= 0, got {capacity} and {incoming}")
    if sum(incoming.values()) > capacity:
        raise ValueError(f"{sum(incoming.values())} incoming samples do not fit in a buffer of {capacity}")
    classes = np.union1d(labels, np.fromiter(incoming, dtype=np.int64, count=len(incoming)))
    of = np.searchsorted(classes, labels)  # class index of every stored sample
    inc = np.array([incoming.get(int(c), 0) for c in classes], dtype=np.int64)
    total = np.bincount(of, minlength=classes.size) + inc
    if total.sum() <= capacity:
        return np.zeros(0, dtype=np.int64)
    # Keeping at most `level` samples of a class (and never fewer than its incoming ones) keeps fill[level]
    # samples; the highest level that fits leaves fewer spare places than there are classes cut to it.
    levels = np.arange(total.max() + 1)
    fill = np.minimum(total, np.maximum(levels[:, None], inc)).sum(axis=1)
    level = int(np.flatnonzero(fill <= capacity)[-1])
    keep = np.minimum(total, np.maximum(level, inc))
    at_level = np.flatnonzero((inc <= level) & (total > level))  # the classes cut to the level
    keep[rng.choice(at_level, size=capacity - fill[level], replace=False)] += 1
    # Within each class, evict the first samples of a random order.
    order = np.lexsort((rng.random(labels.size), of))
    first = np.searchsorted(of[order], np.arange(classes.size))
    rank = np.empty(labels.size, dtype=np.int64)
    rank[order] = np.arange(labels.size) - first[of[order]]
    return np.flatnonzero(rank < (total - keep)[of])
