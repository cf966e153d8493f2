"""dataset=ssc (train, valid and test files, 35 classes), the per-sample file of origin, and tonic's layout."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tests.shd_factory import gzip_copy, random_samples, write_shd_file, zip_copy

import spikecl.data.cache as cache
from spikecl.cli import config_dir
from spikecl.data import BinnedSpikes, SpikeDataset, bin_spikes, load_dataset
from spikecl.data.splits import ClassIncremental, Partition, Progressive
from spikecl.errors import ConfigError

GRID = dict(nb_steps=12, max_time=1.0, nb_units=16)
SSC_CLASSES = 35
PER_CLASS = {"train": 3, "valid": 1, "test": 2}  # samples of every class in each file


def _ssc_files(folder: Path, seed: int = 0) -> dict[str, dict]:
    """Write ssc_{train,valid,test}.h5 in the SHD schema (no meta_info, as SSC); returns their content."""
    rng = np.random.default_rng(seed)
    content = {}
    for role, k in PER_CLASS.items():
        labels = np.repeat(np.arange(SSC_CLASSES), k)
        times, units = random_samples(rng, len(labels), max_spikes=12, max_time=1.1, nb_units=GRID["nb_units"])
        speakers = rng.integers(0, 6, len(labels))
        write_shd_file(folder / f"ssc_{role}.h5", times, units, labels, speakers, meta=False)
        content[role] = dict(times=times, units=units, labels=labels, speakers=speakers)
    return content


def _ssc_cfg(root: Path, *overrides: str) -> object:
    """The dataset group of ``dataset=ssc`` as composed by Hydra, on the tiny grid."""
    grid = [f"dataset.{k}={v}" for k, v in GRID.items()]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["dataset=ssc", f"dataset.root={root}", *grid, *overrides])
    return cfg.dataset


def _expected(content: dict[str, dict]) -> torch.Tensor:
    roles = ("train", "valid", "test")
    samples = [(t, u) for r in roles for t, u in zip(content[r]["times"], content[r]["units"])]
    return torch.stack([bin_spikes(t, u, **GRID) for t, u in samples])


@pytest.fixture(scope="module")
def ssc(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict], SpikeDataset]:
    root = tmp_path_factory.mktemp("ssc")
    content = _ssc_files(root / "data")
    return root, content, load_dataset(_ssc_cfg(root / "data"), root / "cache")


def test_ssc_config() -> None:
    cfg = _ssc_cfg(Path("/nowhere"))
    assert (cfg.name, cfg.train_file, cfg.valid_file, cfg.test_file) == (
        "ssc", "ssc_train.h5", "ssc_valid.h5", "ssc_test.h5")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        assert compose("config", overrides=["dataset=shd"]).dataset.valid_file is None
        ssc_defaults = compose("config", overrides=["dataset=ssc"]).dataset
    assert (ssc_defaults.nb_units, ssc_defaults.max_time) == (700, 1.0)


def test_load_ssc_three_files(ssc: tuple[Path, dict[str, dict], SpikeDataset]) -> None:
    root, content, ds = ssc
    n = {role: SSC_CLASSES * k for role, k in PER_CLASS.items()}
    assert len(ds) == sum(n.values()) and ds.name == "ssc"
    assert ds.origin.tolist() == ["train"] * n["train"] + ["valid"] * n["valid"] + ["test"] * n["test"]
    assert np.array_equal(ds.from_test_file, ds.origin == "test") and ds.from_test_file.dtype == bool
    assert np.array_equal(ds.from_valid_file, ds.origin == "valid") and ds.from_valid_file.dtype == bool
    assert ds.files == [str(root / "data" / f"ssc_{r}.h5") for r in ("train", "valid", "test")]
    assert ds.classes == list(range(SSC_CLASSES)) and ds.num_classes == SSC_CLASSES
    assert len(ds.class_names) == SSC_CLASSES
    assert ds.labels.tolist() == [int(v) for r in ("train", "valid", "test") for v in content[r]["labels"]]
    assert torch.equal(ds.spikes.dense(), _expected(content))


def test_ssc_cache_keeps_origin(ssc: tuple[Path, dict[str, dict], SpikeDataset], monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    root, _, first = ssc
    monkeypatch.setattr(h5py, "File", lambda *a, **k: pytest.fail("the cache must be used"))
    with caplog.at_level(logging.INFO, logger="spikecl.data"):
        again = load_dataset(_ssc_cfg(root / "data"), root / "cache")
    assert np.array_equal(again.origin, first.origin) and again.from_valid_file.any()
    assert "loaded from cache" in caplog.text and "ssc_valid.h5 (35 samples)" in caplog.text


def test_ssc_without_its_valid_file(ssc: tuple[Path, dict[str, dict], SpikeDataset], tmp_path: Path) -> None:
    root, _, _ = ssc
    ds = load_dataset(_ssc_cfg(root / "data", "dataset.valid_file=null"), tmp_path / "cache")
    assert not ds.from_valid_file.any() and len(ds.files) == 2 and set(ds.origin) == {"train", "test"}


@pytest.mark.parametrize("kind", ["gz", "zip"])
def test_ssc_compressed_downloads(ssc: tuple[Path, dict[str, dict], SpikeDataset], tmp_path: Path, kind: str) -> None:
    root, content, plain = ssc
    data = tmp_path / "data"
    data.mkdir()
    for src in sorted((root / "data").glob("ssc_*.h5")):
        (gzip_copy if kind == "gz" else zip_copy)(src, data / f"{src.name}.{kind}")
    ds = load_dataset(_ssc_cfg(data), tmp_path / "cache")
    assert torch.equal(ds.spikes.dense(), _expected(content)) and np.array_equal(ds.origin, plain.origin)
    assert [Path(f).name for f in ds.files] == [f"ssc_{r}.h5.{kind}" for r in ("train", "valid", "test")]
    assert sorted(p.name for p in data.iterdir()) == [f"ssc_{r}.h5.{kind}" for r in ("test", "train", "valid")]


def test_missing_valid_file(tmp_path: Path) -> None:
    _ssc_files(tmp_path / "data")
    (tmp_path / "data" / "ssc_valid.h5").unlink()
    with pytest.raises(ConfigError, match=r"dataset.valid_file='ssc_valid.h5' not found"):
        load_dataset(_ssc_cfg(tmp_path / "data"), tmp_path / "cache")


def test_cache_entry_without_valid_marker_still_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Entries written before valid files existed (no from_valid_file array) load as 'no valid samples'."""
    data = tmp_path / "data"
    write_shd_file(data / "shd_train.h5", [[0.1], [0.2, 0.3]], [[1], [2, 3]], [0, 1], [0, 0])
    write_shd_file(data / "shd_test.h5", [[0.5], []], [[4], []], [1, 0], [1, 1])
    cfg = OmegaConf.create(dict(name="shd", root=str(data), train_file="shd_train.h5", test_file="shd_test.h5", **GRID))
    load_dataset(cfg, tmp_path / "cache")  # no valid_file key at all: read as SHD always was
    (entry,) = (tmp_path / "cache" / "binned").glob("*.npz")
    with np.load(entry) as z:
        arrays = {k: z[k] for k in z.files if k != "from_valid_file"}
    with open(entry, "wb") as fh:
        np.savez(fh, **arrays)
    with caplog.at_level(logging.INFO, logger="spikecl.data"):
        ds = load_dataset(cfg, tmp_path / "cache")
    assert "loaded from cache" in caplog.text and "unusable" not in caplog.text
    assert ds.origin.tolist() == ["train", "train", "test", "test"]


def test_damaged_origin_in_cache_rebuilt(tmp_path: Path) -> None:
    spikes = BinnedSpikes(np.zeros(3, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint16),
                          np.zeros(0, np.uint8), 4, 4)
    both = np.array([True, False])
    data = cache.CachedData(spikes, np.zeros(2, np.int64), np.zeros(2, np.int64), both, ["a"], both)
    cache.save(tmp_path / "e.npz", "k", data)
    assert cache.load(tmp_path / "e.npz", "k") is None  # a sample from both files: rebuilt, never trusted


def test_origin_consistency_checked() -> None:
    spikes = BinnedSpikes(np.zeros(3, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint16),
                          np.zeros(0, np.uint8), 4, 4)
    common = dict(name="x", spikes=spikes, labels=np.zeros(2, np.int64), speakers=np.zeros(2, np.int64),
                  class_names=["a"], files=[])
    ds = SpikeDataset(**common, from_test_file=np.array([False, True]))
    assert ds.origin.tolist() == ["train", "test"] and ds.from_valid_file.tolist() == [False, False]
    ds.from_test_file[0] = True  # origin follows in-place edits
    assert ds.origin.tolist() == ["test", "test"]
    with pytest.raises(ValueError, match="both the validation and the test file"):
        SpikeDataset(**common, from_test_file=np.array([False, True]), from_valid_file=np.array([True, True]))
    with pytest.raises(ValueError, match="one entry per sample"):
        SpikeDataset(**common, from_test_file=np.array([False, True]), from_valid_file=np.array([True]))


@pytest.mark.parametrize("protocol", ["merged", "official"])
def test_splits_on_ssc(ssc: tuple[Path, dict[str, dict], SpikeDataset], protocol: str) -> None:
    _, _, ds = ssc
    partition = Partition(protocol, 0.25)
    old, new = list(range(0, 30)), [34, 30, 33, 31, 32]  # any class lists, any order
    tasks = Progressive(old_classes=old, new_classes=new).tasks(ds, partition, seed=0)
    assert [t.name for t in tasks] == ["pretrain"] + [f"class {c}" for c in new]
    assert tasks[0].classes == old and [t.classes for t in tasks[1:]] == [[c] for c in new]
    used = np.concatenate([np.concatenate([t.train, t.val, t.test]) for t in tasks])
    assert np.array_equal(np.sort(used), np.arange(len(ds)))  # every sample once, none in two parts
    for t in tasks:
        assert set(ds.labels[t.train]) == set(ds.labels[t.test]) == set(t.classes)
        if protocol == "official":  # SSC's own validation file is the validation part
            assert set(ds.origin[t.test]) == {"test"} and set(ds.origin[t.train]) == {"train"}
            assert set(ds.origin[t.val]) == {"valid"}
    (pre, last) = ClassIncremental(new_class=34).tasks(ds, partition, seed=0)
    assert last.classes == [34] and pre.classes == list(range(34))
    with pytest.raises(ConfigError, match="35"):
        Progressive(old_classes=[0, 1], new_classes=[35]).tasks(ds, partition, seed=0)


def _tonic_layout(root: Path, plain: Path) -> None:
    """tonic.datasets.SHD(save_to=root): <root>/SHD/ holds the .h5.zip downloads and their extracted .h5."""
    tonic = root / "SHD"
    tonic.mkdir(parents=True)
    for name in ("shd_train.h5", "shd_test.h5"):
        (tonic / name).write_bytes((plain / name).read_bytes())
        zip_copy(plain / name, tonic / f"{name}.zip")


def test_tonic_layout_shd(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write_shd_file(plain / "shd_train.h5", [[0.1], [0.2, 0.3]], [[1], [2, 3]], [0, 1], [0, 0])
    write_shd_file(plain / "shd_test.h5", [[0.5], []], [[4], []], [1, 0], [1, 1])
    root = tmp_path / "tonic"
    _tonic_layout(root, plain)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    cfg = OmegaConf.create(dict(name="shd", root=str(root), train_file="shd_train.h5", valid_file=None,
                                test_file="shd_test.h5", **GRID))
    ds = load_dataset(cfg, tmp_path / "cache")
    assert ds.files == [str(root / "SHD" / "shd_train.h5"), str(root / "SHD" / "shd_test.h5")]  # the plain files
    assert len(ds) == 4 and ds.origin.tolist() == ["train", "train", "test", "test"]
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # read in place, nothing copied
    assert not (tmp_path / "cache" / "downloads").exists()


def test_tonic_layout_ssc_zip_only(ssc: tuple[Path, dict[str, dict], SpikeDataset], tmp_path: Path) -> None:
    src_root, content, _ = ssc
    (tmp_path / "SSC").mkdir()
    for src in sorted((src_root / "data").glob("ssc_*.h5")):
        zip_copy(src, tmp_path / "SSC" / f"{src.name}.zip")
    ds = load_dataset(_ssc_cfg(tmp_path), tmp_path / "cache")
    assert ds.files == [str(tmp_path / "SSC" / f"ssc_{r}.h5.zip") for r in ("train", "valid", "test")]
    assert torch.equal(ds.spikes.dense(), _expected(content))


def test_not_found_mentions_tonic_subfolders(tmp_path: Path) -> None:
    (tmp_path / "SHD").mkdir()
    with pytest.raises(ConfigError) as err:
        load_dataset(_ssc_cfg(tmp_path), tmp_path / "cache")
    msg = str(err.value)
    assert "dataset.train_file='ssc_train.h5' not found" in msg and "SHD/ and SSC/ subfolders" in msg
    assert "ssc_train.h5.gz" in msg and "\n" not in msg
