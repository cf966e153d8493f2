"""Task pools and train/test splits: disjoint, complete, stratified, seeded, for both protocols."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from spikecl.data import BinnedSpikes, ClassIncremental, Partition, Progressive, SampleIncremental, SpikeDataset
from spikecl.errors import ConfigError

SPLITS = {
    "sample_incremental": lambda: SampleIncremental(speaker=2),
    "class_incremental": lambda: ClassIncremental(new_class=3),
    "progressive": lambda: Progressive(old_classes=[0, 1, 2], new_classes=[4, 3]),
}


def _dataset(n: int = 600, n_classes: int = 6, n_speakers: int = 4, seed: int = 0) -> SpikeDataset:
    rng = np.random.default_rng(seed)
    empty = np.zeros(0, np.uint8)
    return SpikeDataset(
        name="toy",
        spikes=BinnedSpikes(np.zeros(n + 1, np.int64), empty, empty.astype(np.uint16), empty, 4, 4),
        labels=rng.integers(0, n_classes, n).astype(np.int64),
        speakers=rng.integers(0, n_speakers, n).astype(np.int64),
        from_test_file=rng.random(n) < 0.25,
        class_names=[f"c{i}" for i in range(n_classes)],
        files=["a.h5", "b.h5"],
    )


def _tasks(ds: SpikeDataset, split: str, protocol: str = "merged", seed: int = 0, fraction: float = 0.2):
    return SPLITS[split]().tasks(ds, Partition(protocol, fraction), seed)


def _pools(ds: SpikeDataset, split: str) -> list[np.ndarray]:
    lab, spk = ds.labels, ds.speakers
    if split == "sample_incremental":
        masks = [spk != 2, spk == 2]
    elif split == "class_incremental":
        masks = [lab != 3, lab == 3]
    else:
        masks = [np.isin(lab, [0, 1, 2]), lab == 4, lab == 3]
    return [np.flatnonzero(m) for m in masks]


@pytest.mark.parametrize("protocol", ["merged", "official"])
@pytest.mark.parametrize("split", list(SPLITS))
def test_tasks_disjoint_and_complete(split: str, protocol: str) -> None:
    ds = _dataset()
    tasks = _tasks(ds, split, protocol)
    names = {"sample_incremental": ["pretrain", "speaker 2"], "class_incremental": ["pretrain", "class 3"],
             "progressive": ["pretrain", "class 4", "class 3"]}[split]
    assert [t.name for t in tasks] == names
    all_train = np.concatenate([t.train for t in tasks])
    all_test = np.concatenate([t.test for t in tasks])
    assert not np.intersect1d(all_train, all_test).size  # no sample in both train and test, any phase
    for task, pool in zip(tasks, _pools(ds, split)):
        assert task.train.dtype == np.int64 and task.test.dtype == np.int64
        assert np.array_equal(np.sort(np.concatenate([task.train, task.test])), pool)  # every sample used
        assert task.classes == sorted(set(ds.labels[pool].tolist()))
        if protocol == "official":
            assert not ds.from_test_file[task.train].any() and ds.from_test_file[task.test].all()
    if split == "progressive":  # classes 5 in neither list: unused
        assert not np.isin(ds.labels[np.concatenate([all_train, all_test])], [5]).any()


@pytest.mark.parametrize("split", list(SPLITS))
def test_merged_is_stratified(split: str) -> None:
    ds = _dataset()
    for task in _tasks(ds, split, fraction=0.3):
        for c in task.classes:
            n = int(np.sum(ds.labels[task.train] == c) + np.sum(ds.labels[task.test] == c))
            assert np.sum(ds.labels[task.test] == c) == min(max(int(np.floor(n * 0.3 + 0.5)), 1), n - 1)


def test_merged_is_reproducible_and_seeded() -> None:
    ds = _dataset()
    a, b, c = (_tasks(ds, "class_incremental", seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(x.test, y.test) and np.array_equal(x.train, y.train) for x, y in zip(a, b))
    assert not np.array_equal(a[0].test, c[0].test)


def test_independent_of_class_order() -> None:
    ds = _dataset()
    reordered = Progressive(old_classes=[2, 0, 1], new_classes=[3, 4]).tasks(ds, Partition("merged", 0.2), 0)
    original = _tasks(ds, "progressive")
    by_name = {t.name: t for t in reordered}
    for task in original:
        assert np.array_equal(task.test, by_name[task.name].test)
    assert [t.name for t in reordered] == ["pretrain", "class 3", "class 4"]  # learning order kept


def test_single_sample_class_goes_to_train(caplog: pytest.LogCaptureFixture) -> None:
    ds = _dataset(n=200)
    ds.labels[:] = np.where(ds.labels == 5, 4, ds.labels)
    ds.labels[17] = 5
    with caplog.at_level(logging.INFO, logger="spikecl.data"):
        pretrain = _tasks(ds, "class_incremental")[0]
    assert 17 in pretrain.train and 17 not in pretrain.test
    assert "class 5 has a single sample" in caplog.text


def test_two_sample_class_keeps_one_for_test() -> None:
    ds = _dataset(n=200)
    ds.labels[:] = np.where(ds.labels == 3, 2, ds.labels)
    ds.labels[[5, 9]] = 3
    new = _tasks(ds, "class_incremental", fraction=0.01)[1]
    assert len(new.train) == 1 and len(new.test) == 1


def test_check_split_against_data() -> None:
    ds = _dataset()
    with pytest.raises(ConfigError, match=r"split.speaker=9 is not in the data set; its speakers are 0, 1, 2, 3"):
        SampleIncremental(speaker=9).check(ds)
    with pytest.raises(ConfigError, match=r"split.new_class=6 .* classes are 0, 1, 2, 3, 4, 5"):
        ClassIncremental(new_class=6).check(ds)
    bad = Progressive(old_classes=[0, 1], new_classes=[2, 11])
    with pytest.raises(ConfigError, match=r"split.new_classes=11"):
        bad.check(ds)
    with pytest.raises(ConfigError, match=r"split.new_classes=11"):
        bad.tasks(ds, Partition(), 0)
    SPLITS["progressive"]().check(ds)
    with pytest.raises(ConfigError, match=r"old_classes and new_classes overlap in \[1\]"):
        Progressive(old_classes=[0, 1], new_classes=[1])


def test_bad_protocol_and_empty_parts() -> None:
    ds = _dataset()
    with pytest.raises(ConfigError, match="protocol='random' is not valid; allowed: merged, official"):
        _tasks(ds, "class_incremental", protocol="random")
    with pytest.raises(ConfigError, match=r"test_fraction=1.0 .* \(0, 1\)"):
        _tasks(ds, "class_incremental", fraction=1.0)
    ds.from_test_file[ds.speakers == 2] = True  # a speaker only in the test file, like SHD's 4 and 5
    with pytest.raises(ConfigError, match="task 'speaker 2' .* no train samples .*protocol=official"):
        _tasks(ds, "sample_incremental", protocol="official")
    assert len(_tasks(ds, "sample_incremental", protocol="merged")) == 2


def test_progressive_split_on_some_speakers_only() -> None:
    ds = _dataset()
    tasks = Progressive(old_classes=[0, 1, 2], new_classes=[4, 3], speakers=[1, 3]).tasks(ds, Partition("merged", 0.2, 0.1), 0)
    chosen = np.isin(ds.speakers, [1, 3])
    for task, classes in zip(tasks, ([0, 1, 2], [4], [3])):
        pool = np.flatnonzero(chosen & np.isin(ds.labels, classes))
        parts = np.concatenate([task.train, task.val, task.test])
        assert sorted(parts.tolist()) == pool.tolist()  # every sample of these speakers, no other
    with pytest.raises(ConfigError, match=r"split.speakers=7 is not in the data set; its speakers are 0, 1, 2, 3"):
        Progressive(old_classes=[0], new_classes=[1], speakers=[7]).check(ds)
    assert Progressive(old_classes=[0], new_classes=[1], speakers=[2]).figures()["speakers"] == [2]


def test_sample_incremental_learns_a_list_of_speakers_in_order() -> None:
    ds = _dataset()
    split = SampleIncremental(speaker=[3, 1])
    tasks = split.tasks(ds, Partition("merged", 0.2), 0)
    assert [t.name for t in tasks] == ["pretrain", "speaker 3", "speaker 1"] and split.per_task
    for task, members in zip(tasks, (~np.isin(ds.speakers, [3, 1]), ds.speakers == 3, ds.speakers == 1)):
        assert sorted(np.concatenate([task.train, task.val, task.test]).tolist()) == np.flatnonzero(members).tolist()
    assert not SampleIncremental(speaker=2).per_task
    with pytest.raises(ConfigError, match=r"split.speaker=9 is not in the data set"):
        SampleIncremental(speaker=[1, 9]).check(ds)
