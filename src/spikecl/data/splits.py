"""Continual-learning tasks: which samples are pretrained on, which are learned later, train vs test.

A split (seed-spec 1.6) divides the data into pools: task 0 is the pretraining pool, the following tasks
are the new data in the order they are learned. Each pool is then cut into train and test by the protocol:

- ``merged`` (the paper's): train and test files pooled; each pool is split stratified by class, with
  ``round(n * test_fraction)`` test samples per class (rounded half up, at least 1 and at most n - 1; a
  class with a single sample goes to train). The choice comes from one seeded random permutation of the
  whole data set, so it does not depend on the order of classes in the config.
- ``official``: a pool's train part is its samples from the SHD train file, its test part those from
  the test file.

A validation part for honest tuning is then carved from each train part (``val_fraction`` per class, the
next-lowest ranks after the test samples; SSC's own validation file under ``official``). Every sample of a
pool is used, and no sample is ever in two parts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikecl.data.shd import SpikeDataset
from spikecl.errors import ConfigError
from spikecl.utils import checks, streams

log = logging.getLogger(__name__)

PROTOCOLS = ("merged", "official")


@dataclass
class Task:
    """One phase of an experiment: its name, the classes its data holds, its train, validation and test
    samples (data-set indices; ``val`` is carved from the train portion and may be empty)."""

    name: str
    classes: list[int]
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Partition:
    """How every pool is cut into train, validation and test parts.

    ``protocol``: ``merged`` (the paper's: both files pooled, ``test_fraction`` of every class to test) or
    ``official`` (the files' own train/test partition). The validation part is carved from the train
    portion, never from test: ``val_fraction`` of every class (at least one sample of each class that has
    two or more), or, under ``official`` with a validation file (SSC), that file's samples.
    """

    protocol: str = "merged"
    test_fraction: float = 0.2
    val_fraction: float = 0.0

    def __post_init__(self) -> None:
        checks.one_of("protocol", self.protocol, PROTOCOLS)
        checks.fraction("test_fraction", self.test_fraction)
        checks.fraction("val_fraction", self.val_fraction, allow_zero=True, example=0.1)

    def cut(self, dataset: SpikeDataset, pool: np.ndarray, rank: np.ndarray,
            task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted (train, val, test) data-set indices of ``pool``."""
        if self.protocol == "merged":
            train, test = _stratified(pool, dataset.labels[pool], rank[pool], self.test_fraction, task)
        else:
            train, test = pool[~dataset.from_test_file[pool]], pool[dataset.from_test_file[pool]]
            valid_file = dataset.from_valid_file[train]
            if valid_file.any():
                return train[~valid_file], train[valid_file], test
        if self.val_fraction == 0:
            return train, train[:0], test
        # The lowest ranks of a class went to test; the next lowest go to validation.
        train, val = _stratified(train, dataset.labels[train], rank[train], self.val_fraction, task)
        return train, val, test


class Split:
    """A continual-learning scenario: which samples are pretrained on and which are learned later, in order.

    Subclasses give the pools (:meth:`pools`); :meth:`tasks` cuts each into train and test. ``per_task``
    says how results are reported: every task's accuracy after every task (many tasks, as the progressive
    split), or only the pretraining task's (old), the latest task's (new) and all. :meth:`figures` says what
    the split was, for summaries.
    """

    name = "split"
    per_task = False

    def figures(self) -> dict[str, Any]:
        """The split's name, its settings and ``per_task``, for ``summary.json``."""
        settings = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"split": self.name, **settings, "per_task": self.per_task}

    def pools(self, dataset: SpikeDataset) -> list[tuple[str, np.ndarray]]:
        """(task name, boolean membership mask) of each pool, pretraining first."""
        raise NotImplementedError

    def check(self, dataset: SpikeDataset) -> None:
        """ConfigError if the split names a speaker or class that the data set does not hold."""

    def tasks(self, dataset: SpikeDataset, partition: Partition, seed: int | None) -> list[Task]:
        """Task 0 = the pretraining pool, then the new pools in learning order, each cut into train/test."""
        self.check(dataset)
        # One permutation of all samples; within each (pool, class) the lowest ranks become test samples.
        rank = streams.split_ranks(seed).permutation(len(dataset))
        tasks = []
        for name, members in self.pools(dataset):
            pool = np.flatnonzero(members)
            train, val, test = partition.cut(dataset, pool, rank, name)
            for part, indices in (("train", train), ("test", test)):
                if not len(indices):
                    raise ConfigError(
                        f"task '{name}' of split={self.name} has no {part} samples under "
                        f"dataset.protocol={partition.protocol} ({len(pool)} samples in its pool); choose another "
                        "speaker/class" + (" or dataset.protocol=merged" if partition.protocol == "official" else "")
                    )
            classes = [int(c) for c in np.unique(dataset.labels[pool])]
            tasks.append(Task(name, classes, train.astype(np.int64), test.astype(np.int64), val.astype(np.int64)))
            log.info("task %s: classes %s, %d train + %d validation + %d test samples", name, classes, len(train),
                     len(val), len(test))
        return tasks


class SampleIncremental(Split):
    """Pretrain on every speaker but ``speaker``, then learn the held-out speaker (seed-spec 1.6).

    ``speaker`` may also be a list: every listed speaker is held out of pretraining and learned as a task of
    its own, in this order (a sequence of domains; results are then reported for every task).
    """

    name = "sample_incremental"

    def __init__(self, *, speaker: int | Sequence[int]) -> None:
        if isinstance(speaker, (int, np.integer)):
            self.speaker: int | list[int] = checks.integer("speaker", speaker, 0)
        else:
            self.speaker = checks.int_list("speaker", speaker, "speaker")
            self.per_task = len(self.speaker) > 1

    @property
    def _learned(self) -> list[int]:
        return [self.speaker] if isinstance(self.speaker, int) else self.speaker

    def check(self, dataset: SpikeDataset) -> None:
        for s in self._learned:
            _check_member("split.speaker", s, dataset.speaker_ids, "speakers")

    def pools(self, dataset: SpikeDataset) -> list[tuple[str, np.ndarray]]:
        return [("pretrain", ~np.isin(dataset.speakers, self._learned))] + [
            (f"speaker {s}", dataset.speakers == s) for s in self._learned]


class ClassIncremental(Split):
    """Pretrain on every class but ``new_class``, then learn the held-out class (seed-spec 1.6)."""

    name = "class_incremental"

    def __init__(self, *, new_class: int) -> None:
        self.new_class = checks.integer("new_class", new_class, 0)

    def check(self, dataset: SpikeDataset) -> None:
        _check_member("split.new_class", self.new_class, dataset.classes, "classes")

    def pools(self, dataset: SpikeDataset) -> list[tuple[str, np.ndarray]]:
        c = self.new_class
        return [("pretrain", dataset.labels != c), (f"class {c}", dataset.labels == c)]


class Progressive(Split):
    """Pretrain on ``old_classes``, then learn ``new_classes`` one at a time in this order (seed-spec 3.7).

    ``speakers`` (None: all) keeps only these speakers' samples in every pool: an experiment on some speakers,
    e.g. tuning on two speakers and testing the chosen settings on a third that tuning never saw
    (``+split.speakers=[0,1]``: the key is not in the config, so that splits of your own need not take it).
    """

    name = "progressive"
    per_task = True

    def __init__(self, *, old_classes: Sequence[int], new_classes: Sequence[int],
                 speakers: Sequence[int] | None = None) -> None:
        self.old_classes = checks.int_list("old_classes", old_classes)
        self.new_classes = checks.int_list("new_classes", new_classes)
        self.speakers = None if speakers is None else checks.int_list("speakers", speakers, "speaker")
        overlap = sorted(set(self.old_classes) & set(self.new_classes))
        if overlap:
            raise ConfigError(f"old_classes and new_classes overlap in {overlap}; a class is either "
                              "pretrained or learned later, not both")

    def check(self, dataset: SpikeDataset) -> None:
        for key in ("old_classes", "new_classes"):
            for value in getattr(self, key):
                _check_member(f"split.{key}", value, dataset.classes, "classes")
        for value in self.speakers or []:
            _check_member("split.speakers", value, dataset.speaker_ids, "speakers")

    def pools(self, dataset: SpikeDataset) -> list[tuple[str, np.ndarray]]:
        labels = dataset.labels
        kept = np.ones(len(labels), dtype=bool) if self.speakers is None else np.isin(dataset.speakers, self.speakers)
        return [("pretrain", np.isin(labels, self.old_classes) & kept)] + [
            (f"class {c}", (labels == c) & kept) for c in self.new_classes
        ]


def _stratified(
    pool: np.ndarray, labels: np.ndarray, rank: np.ndarray, test_fraction: float, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices of ``pool``; per class the lowest-``rank`` samples go to test."""
    order = np.lexsort((rank, labels))
    sorted_labels = labels[order]
    classes, first, sizes = np.unique(sorted_labels, return_index=True, return_counts=True)
    n_test = np.clip(np.floor(sizes * test_fraction + 0.5).astype(np.int64), 1, np.maximum(sizes - 1, 1))
    n_test[sizes < 2] = 0
    for c in classes[sizes < 2]:
        log.info("task %s: class %d has a single sample; it goes to the train part", task, c)
    position = np.arange(len(order)) - np.repeat(first, sizes)
    is_test = np.empty(len(pool), dtype=bool)
    is_test[order] = position < np.repeat(n_test, sizes)
    return pool[~is_test], pool[is_test]


def _check_member(key: str, value: Any, allowed: list[int], what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) not in allowed:
        raise ConfigError(
            f"{key}={value} is not in the data set; its {what} are {', '.join(map(str, allowed))}"
        )
