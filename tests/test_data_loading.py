"""Reading SHD-format files (.h5, .h5.gz, .h5.zip), their clear errors, and the binned cache."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tests.shd_factory import gzip_copy, write_shd_file, zip_copy

import spikecl.data.binning as binning
import spikecl.data.files as files
from spikecl.errors import ConfigError
from spikecl.data import bin_spikes, load_dataset

GRID = dict(nb_steps=12, max_time=1.375, nb_units=8)  # float16-exact edges, dt = 0.125

TRAIN = dict(
    times_list=[
        [],  # an empty sample is valid
        [0.0, 0.1, 1.375, 0.125, 0.2, 0.2, 1.3],  # first step, exactly max_time, an edge, a repeat
        [0.5, 0.6],
        [1.0],
        [0.7, 0.7, 0.7],
    ],
    units_list=[[], [2, 2, 5, 2, 7, 7, 0], [1, 3], [4], [6, 6, 6]],
    labels=[0, 1, 2, 0, 1],
    speakers=[0, 1, 0, 2, 1],
)
TEST = dict(times_list=[[0.3], [0.9, 0.01]], units_list=[[5], [0, 7]], labels=[2, 0], speakers=[3, 0])


def _cfg(root: Path | None, **over: object) -> object:
    base = dict(name="shd", root=None if root is None else str(root), train_file="shd_train.h5",
                test_file="shd_test.h5", protocol="merged", test_fraction=0.2, **GRID)
    return OmegaConf.create({**base, **over})


def _write_pair(folder: Path, train: dict | None = None, test: dict | None = None, **kw: object) -> list[Path]:
    return [
        write_shd_file(folder / "shd_train.h5", **(train or TRAIN), **kw),
        write_shd_file(folder / "shd_test.h5", **(test or TEST), **kw),
    ]


def _expected(train: dict = TRAIN, test: dict = TEST) -> torch.Tensor:
    samples = list(zip(train["times_list"], train["units_list"])) + list(zip(test["times_list"], test["units_list"]))
    return torch.stack([bin_spikes(np.array(t, np.float16), np.array(u, np.uint16), **GRID) for t, u in samples])


def _fingerprint(folder: Path) -> dict[str, tuple[int, str]]:
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest()) for p in sorted(folder.iterdir())}


def test_load_h5(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    _write_pair(data)
    before = _fingerprint(data)
    with caplog.at_level(logging.INFO, logger="spikecl.data"):
        ds = load_dataset(_cfg(data), tmp_path / "cache")
    assert len(ds) == 7 and ds.name == "shd"
    assert ds.labels.tolist() == [0, 1, 2, 0, 1, 2, 0] and ds.labels.dtype == np.int64
    assert ds.speakers.tolist() == [0, 1, 0, 2, 1, 3, 0] and ds.speakers.dtype == np.int64
    assert ds.from_test_file.tolist() == [False] * 5 + [True] * 2
    assert ds.classes == [0, 1, 2] and ds.speaker_ids == [0, 1, 2, 3]
    assert ds.class_names[:3] == ["zero", "one", "two"] and ds.num_classes == 20
    assert ds.files == [str(data / "shd_train.h5"), str(data / "shd_test.h5")]
    dense = ds.spikes.dense()
    assert torch.equal(dense, _expected())
    # sample 1 by hand: steps 1 (t=0, 0.1), 2 (t=0.125 on an edge; two spikes of unit 7 at t=0.2), 11 (t=1.3)
    assert {(int(s), int(u)): float(dense[1, s, u]) for s, u in dense[1].nonzero()} == {
        (1, 2): 2.0, (2, 2): 1.0, (2, 7): 2.0, (11, 0): 1.0
    }
    assert dense[0].sum() == 0 and dense[:, 0].sum() == 0
    assert _fingerprint(data) == before  # input files untouched
    log = caplog.text
    assert "shd_train.h5 (5 samples)" in log and "shd_test.h5 (2 samples)" in log
    assert "3 classes" in log and "4 speakers" in log


@pytest.mark.parametrize("kind", ["gz", "zip"])
def test_load_compressed_download(tmp_path: Path, kind: str) -> None:
    plain, data = tmp_path / "plain", tmp_path / "data"
    data.mkdir()
    for src in _write_pair(plain):
        if kind == "gz":
            gzip_copy(src, data / (src.name + ".gz"))
        else:
            zip_copy(src, data / (src.name + ".zip"))
    before = _fingerprint(data)
    cache = tmp_path / "cache"
    ds = load_dataset(_cfg(data), cache)
    assert torch.equal(ds.spikes.dense(), _expected())
    assert ds.files[0].endswith(f"shd_train.h5.{kind}")
    assert _fingerprint(data) == before  # nothing decompressed next to the user's files
    copies = sorted((cache / "downloads").iterdir())
    assert len(copies) == 2 and all(h5py.is_hdf5(p) for p in copies)
    # Decompressed once: a rebuild of the binned data reuses the copies.
    for entry in (cache / "binned").iterdir():
        entry.unlink()
    stats = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in copies]
    assert torch.equal(load_dataset(_cfg(data), cache).spikes.dense(), _expected())
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted((cache / "downloads").iterdir())] == stats


def test_zip_member_named_differently(tmp_path: Path) -> None:
    plain, data = tmp_path / "plain", tmp_path / "data"
    data.mkdir()
    train, test = _write_pair(plain)
    zip_copy(train, data / "shd_train.h5.zip", member="folder/whatever.h5")
    gzip_copy(test, data / "shd_test.h5.gz")
    assert len(load_dataset(_cfg(data), tmp_path / "cache")) == 7


def _fail(*args: object, **kwargs: object) -> None:
    raise AssertionError("must not be called")


def test_cache_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    _write_pair(data)
    first = load_dataset(_cfg(data), cache)
    assert len(list((cache / "binned").glob("*.npz"))) == 1
    monkeypatch.setattr(binning, "bin_dataset", _fail)
    monkeypatch.setattr(files.hashlib, "file_digest", _fail)  # content hashes are remembered too
    monkeypatch.setattr(h5py, "File", _fail)
    second = load_dataset(_cfg(data), cache)
    assert torch.equal(second.spikes.dense(), first.spikes.dense())
    for name in ("labels", "speakers", "from_test_file"):
        assert np.array_equal(getattr(second, name), getattr(first, name))
        assert getattr(second, name).dtype == getattr(first, name).dtype
    assert second.class_names == first.class_names and second.files == first.files
    # Another binning parameter is another entry.
    with pytest.raises(AssertionError, match="must not be called"):
        load_dataset(_cfg(data, nb_steps=13), cache)


def test_cache_invalidated_when_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    _write_pair(data)
    load_dataset(_cfg(data), cache)
    write_shd_file(data / "shd_train.h5", **dict(TRAIN, labels=[1, 1, 1, 1, 1]))
    assert load_dataset(_cfg(data), cache).labels.tolist()[:5] == [1] * 5
    # Same content, new mtime: rebuilt as well (identity = size, mtime and content hash).
    calls = []
    original = binning.bin_dataset
    monkeypatch.setattr(binning, "bin_dataset", lambda *a, **k: calls.append(1) or original(*a, **k))
    os.utime(data / "shd_test.h5", ns=(1_000_000_000, 1_000_000_000))
    load_dataset(_cfg(data), cache)
    assert len(calls) == 2
    assert len(list((cache / "binned").glob("*.npz"))) == 3


def _edit_in_place(path: Path, content: bytes) -> None:
    """Overwrite ``path`` with ``content`` of the same size in place (same inode), then set its times back."""
    st = path.stat()
    assert len(content) == st.st_size and content != path.read_bytes()
    with open(path, "r+b") as fh:
        fh.write(content)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)


def _relabelled(path: Path, labels: list[int]) -> bytes:
    """The bytes of the HDF5 file ``path`` with its labels rewritten (same layout, so the same size)."""
    copy = path.with_name("relabelled.h5")
    copy.write_bytes(path.read_bytes())
    with h5py.File(copy, "r+") as f:
        f["labels"][...] = labels
    content = copy.read_bytes()
    copy.unlink()
    return content


def _stored_gzip(content: bytes) -> bytes:
    """A gzip stream whose size depends only on the size of ``content`` (no compression, no time stamp)."""
    return gzip.compress(content, compresslevel=0, mtime=0)


@pytest.mark.parametrize("packed", [False, True])
def test_a_file_edited_in_place_with_its_size_and_mtime_kept_is_seen_as_changed(tmp_path: Path, packed: bool) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    train, _ = _write_pair(data)
    new_labels = [2, 2, 0, 1, 0]
    edited = _relabelled(train, new_labels)
    if packed:  # a .gz download: its decompressed copy in the cache must not be reused either
        (data / "shd_train.h5.gz").write_bytes(_stored_gzip(train.read_bytes()))
        train.unlink()
        train, edited = data / "shd_train.h5.gz", _stored_gzip(edited)
    before = files.file_identity(train, cache)
    assert load_dataset(_cfg(data), cache).labels.tolist()[:5] == TRAIN["labels"]
    _edit_in_place(train, edited)
    after = files.file_identity(train, cache)
    assert (after["size"], after["mtime_ns"]) == (before["size"], before["mtime_ns"])
    assert after["sha1"] == hashlib.sha1(edited).hexdigest() != before["sha1"]
    assert load_dataset(_cfg(data), cache).labels.tolist()[:5] == new_labels


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_cache_rebuilt(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    _write_pair(data)
    load_dataset(_cfg(data), cache)
    (entry,) = (cache / "binned").glob("*.npz")
    raw = bytearray(entry.read_bytes())
    if damage == "flip":
        # flip the last byte of the stored counts array (just before the next zip member)
        pos = raw.find(b"PK\x03\x04", raw.find(b"counts.npy")) - 1
        raw[pos] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = bytearray(b"not a zip file")
    entry.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="spikecl.data"):
        ds = load_dataset(_cfg(data), cache)
    assert "unusable" in caplog.text and "rebuilding" in caplog.text
    assert torch.equal(ds.spikes.dense(), _expected())
    caplog.clear()
    load_dataset(_cfg(data), cache)  # the rebuilt entry is intact
    assert "unusable" not in caplog.text


def test_schema_variants(tmp_path: Path) -> None:
    """Missing extra/keys and meta_info, str keys, any integer type for labels and speakers."""
    data = tmp_path / "data"
    _write_pair(data, keys=False, meta=False)
    ds = load_dataset(_cfg(data), tmp_path / "c1")
    assert ds.class_names == ["class 0", "class 1", "class 2"] and ds.num_classes == 3
    with h5py.File(data / "shd_train.h5", "a") as f:
        labels, speakers = f["labels"][...], f["extra/speaker"][...]
        del f["labels"], f["extra/speaker"]
        f["labels"] = labels.astype(np.int8)
        f["extra/speaker"] = speakers.astype(np.int64)
        f.create_dataset("extra/keys", data=["null", "eins", "zwei", "drei"], dtype=h5py.string_dtype())
    ds = load_dataset(_cfg(data), tmp_path / "c2")
    assert ds.labels.tolist() == [0, 1, 2, 0, 1, 2, 0] and ds.speakers.dtype == np.int64
    assert ds.class_names == ["null", "eins", "zwei", "drei"] and ds.num_classes == 4


def test_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as err:
        load_dataset(_cfg(tmp_path / "nowhere"), tmp_path / "cache")
    msg = str(err.value)
    for part in ("dataset.train_file='shd_train.h5'", str(tmp_path / "nowhere"), "does not exist",
                 "shd_train.h5.gz", "shd_train.h5.zip", "https://zenkelab.org/datasets/", "~/data/hdspikes",
                 "SPIKECL_DATA", "dataset=synthetic"):
        assert part in msg
    write_shd_file(tmp_path / "d" / "shd_train.h5", **TRAIN)
    with pytest.raises(ConfigError, match=r"dataset.test_file='shd_test.h5' not found"):
        load_dataset(_cfg(tmp_path / "d"), tmp_path / "cache")
    monkeypatch.setattr(files, "EMBEDDED_ROOT", tmp_path / "embedded")
    with pytest.raises(ConfigError, match="embedded data set"):
        load_dataset(_cfg(None), tmp_path / "cache")


def test_embedded_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedded = tmp_path / "embedded"
    for src in _write_pair(tmp_path / "plain"):
        embedded.mkdir(exist_ok=True)
        gzip_copy(src, embedded / (src.name + ".gz"))
    monkeypatch.setattr(files, "EMBEDDED_ROOT", embedded)
    assert torch.equal(load_dataset(_cfg(None), tmp_path / "cache").spikes.dense(), _expected())


def _broken(tmp_path: Path, edit: object = None, train: dict | None = None) -> str:
    """The ConfigError message of loading a pair whose train file is ``train`` and then ``edit``-ed."""
    data = tmp_path / "data"
    _write_pair(data, train=train)
    if edit is not None:
        with h5py.File(data / "shd_train.h5", "a") as f:
            edit(f)
    with pytest.raises(ConfigError) as err:
        load_dataset(_cfg(data), tmp_path / "cache")
    assert str(data / "shd_train.h5") in str(err.value)
    return str(err.value)


def test_error_missing_dataset_path(tmp_path: Path) -> None:
    def drop(f: h5py.File) -> None:
        del f["extra/speaker"]

    assert "no dataset 'extra/speaker'" in _broken(tmp_path, drop)


def test_error_lengths_disagree(tmp_path: Path) -> None:
    msg = _broken(tmp_path, train=dict(TRAIN, labels=[0, 1, 2, 0]))
    assert "spikes/times 5" in msg and "labels 4" in msg and "extra/speaker 5" in msg


def test_error_sample_lengths_disagree(tmp_path: Path) -> None:
    units = [[], [2, 2, 5, 2, 7, 7, 0], [1], [4], [6, 6, 6]]
    assert "sample 2 has 2 spike times but 1 units" in _broken(tmp_path, train=dict(TRAIN, units_list=units))


def test_error_unit_out_of_range(tmp_path: Path) -> None:
    units = [[], [2, 2, 5, 2, 7, 7, 0], [1, 3], [8], [6, 6, 6]]
    msg = _broken(tmp_path, train=dict(TRAIN, units_list=units))
    assert "sample 3 has unit index 8" in msg and "dataset.nb_units=8" in msg


@pytest.mark.parametrize("bad", [-0.25, float("nan")])
def test_error_bad_times(tmp_path: Path, bad: float) -> None:
    times = [[], [0.0, 0.1, 1.375, 0.125, 0.2, 0.2, 1.3], [0.5, 0.6], [bad], [0.7, 0.7, 0.7]]
    msg = _broken(tmp_path, train=dict(TRAIN, times_list=times))
    assert "sample 3 has an invalid spike time" in msg


def test_error_wrong_types(tmp_path: Path) -> None:
    def float_labels(f: h5py.File) -> None:
        del f["labels"]
        f["labels"] = np.zeros(5, np.float32)

    assert "labels has type float32; expected integers" in _broken(tmp_path, float_labels)


def test_error_not_hdf5_or_bad_download(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_pair(data)
    (data / "shd_train.h5").write_bytes(b"nonsense")
    with pytest.raises(ConfigError, match="not a readable HDF5 file"):
        load_dataset(_cfg(data), tmp_path / "cache")
    (data / "shd_train.h5").unlink()
    (data / "shd_train.h5.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(ConfigError, match=r"shd_train.h5.gz: cannot decompress"):
        load_dataset(_cfg(data), tmp_path / "cache")
    assert not list((tmp_path / "cache" / "downloads").iterdir())  # no half-written copy left
