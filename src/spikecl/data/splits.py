"""Continual-learning tasks: which samples are pretrained on, which are learned later, train vs test.

A split (seed-spec 1.6) divides the data into pools: task 0 is the pretraining pool, the following tasks
are the new data in the order they are learned. Each pool is then cut into train and test by the protocol:

- ``merged`` (the paper's): train and test files pooled; each pool is split stratified by class, with
  ``round(n * test_fraction)`` test samples per class (rounded half up, at least 1 and at most n - 1; a
  class with a single sample goes to train). The choice comes from one seeded random permutation of the
  whole data set, so it does not depend on the order of classes in the config.
- ``official``: a pool's train part is its samples from the SHD train file, its test part those from
  the test file.

Every sample of a pool is used, and no sample is ever both in a train and a test part.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikecl.errors import ConfigError
from spikecl.data.shd import SpikeDataset

log = logging.getLogger(__name__)

SPLITS = ("sample_incremental", "class_incremental", "progressive")
PROTOCOLS = ("merged", "official")


@dataclass
class Task:
    """One phase of an experiment: its name, the classes its data holds, its train and test samples."""

    name: str
    classes: list[int]
    train: np.ndarray
    test: np.ndarray


def check_split_against_data(split_cfg: Mapping[str, Any], dataset: SpikeDataset) -> None:
    """ConfigError if the split names a speaker or class that the data set does not hold."""
    name = split_cfg["name"]
    if name == "sample_incremental":
        _check_member("split.speaker", split_cfg["speaker"], dataset.speaker_ids, "speakers")
    elif name == "class_incremental":
        _check_member("split.new_class", split_cfg["new_class"], dataset.classes, "classes")
    elif name == "progressive":
        for key in ("old_classes", "new_classes"):
            for value in split_cfg[key]:
                _check_member(f"split.{key}", value, dataset.classes, "classes")
    else:
        raise ConfigError(f"split.name={name!r} is not allowed; allowed: {', '.join(SPLITS)}")


def make_tasks(
    dataset: SpikeDataset,
    split_cfg: Mapping[str, Any],
    protocol: str,
    test_fraction: float,
    seed: int | None,
) -> list[Task]:
    """Task 0 = the pretraining pool, then the new pools in learning order, each cut into train/test."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"dataset.protocol={protocol!r} is not allowed; allowed: {', '.join(PROTOCOLS)}")
    if protocol == "merged" and not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"dataset.test_fraction={test_fraction} is not allowed; it must be in (0, 1)")
    check_split_against_data(split_cfg, dataset)

    # One permutation of all samples; within each (pool, class) the lowest ranks become test samples.
    rank = np.random.default_rng(seed).permutation(len(dataset))
    tasks = []
    for name, members in _pools(dataset, split_cfg):
        pool = np.flatnonzero(members)
        if protocol == "merged":
            train, test = _stratified(pool, dataset.labels[pool], rank[pool], float(test_fraction), name)
        else:
            train, test = pool[~dataset.from_test_file[pool]], pool[dataset.from_test_file[pool]]
        for part, indices in (("train", train), ("test", test)):
            if not len(indices):
                raise ConfigError(
                    f"task '{name}' of split={split_cfg['name']} has no {part} samples under "
                    f"dataset.protocol={protocol} ({len(pool)} samples in its pool); choose another "
                    "speaker/class" + (" or dataset.protocol=merged" if protocol == "official" else "")
                )
        classes = [int(c) for c in np.unique(dataset.labels[pool])]
        tasks.append(Task(name, classes, train.astype(np.int64), test.astype(np.int64)))
        log.info("task %s: classes %s, %d train + %d test samples", name, classes, len(train), len(test))
    return tasks


def _pools(dataset: SpikeDataset, split_cfg: Mapping[str, Any]) -> list[tuple[str, np.ndarray]]:
    """(task name, boolean membership mask) of each pool, pretraining first."""
    name, labels = split_cfg["name"], dataset.labels
    if name == "sample_incremental":
        speaker = int(split_cfg["speaker"])
        return [("pretrain", dataset.speakers != speaker), (f"speaker {speaker}", dataset.speakers == speaker)]
    if name == "class_incremental":
        new = int(split_cfg["new_class"])
        return [("pretrain", labels != new), (f"class {new}", labels == new)]
    old = [int(c) for c in split_cfg["old_classes"]]
    return [("pretrain", np.isin(labels, old))] + [
        (f"class {int(c)}", labels == int(c)) for c in split_cfg["new_classes"]
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
