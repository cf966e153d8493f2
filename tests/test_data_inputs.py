"""Bad inputs and hostile file systems in the data layer: each ends in one clear line, or in one warning
and a run that goes on; parallel jobs decompress and bin a file once."""

from __future__ import annotations

import errno
import gzip
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests.shd_factory import gzip_copy, write_shd_file

import spikecl.data.cache as cache
import spikecl.data.files as files
import spikecl.data.shd as shd
from spikecl.data import load_dataset
from spikecl.errors import ConfigError
from spikecl.utils.atomic import TEMP_SUFFIX
from spikecl.utils.cache_dir import STALE_AFTER_S, cache_lock, open_cache_dir
from spikecl.utils.locks import file_lock

TIMES = [[0.1, 0.5, 1.2], [0.3], [0.2, 0.9], [1.0, 1.1]]
UNITS = [[1, 2, 3], [4], [5, 6], [7, 0]]


def _cfg(root: Path) -> object:
    return OmegaConf.create(dict(name="shd", root=str(root), train_file="shd_train.h5", test_file="shd_test.h5",
                                 nb_steps=10, max_time=1.4, nb_units=8))  # fmt: skip


def _write(root: Path, times=TIMES, labels=(0, 1, 0, 1), keys=None) -> Path:
    for name in ("shd_train.h5", "shd_test.h5"):
        write_shd_file(root / name, times, UNITS, list(labels), [0, 1, 0, 1], keys=keys)
    return root


# ---------------------------------------------------------------- downloads


def test_corrupt_gz_body_is_one_clear_error(tmp_path: Path) -> None:
    data = _write(tmp_path / "data")
    packed = gzip_copy(data / "shd_train.h5", data / "shd_train.h5.gz")
    (data / "shd_train.h5").unlink()
    raw = bytearray(packed.read_bytes())
    raw[10:] = b"\xff" * (len(raw) - 10)  # a valid gzip header, then a deflate stream that is garbage
    packed.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match=r"shd_train.h5.gz: cannot decompress it \(.*\); the download is probably "
                                          r"incomplete or damaged, download it again"):  # fmt: skip
        load_dataset(_cfg(data), tmp_path / "cache")
    assert not any((tmp_path / "cache" / "downloads").iterdir())


def test_leftover_temp_copy_is_never_taken_for_a_finished_one(tmp_path: Path) -> None:
    data = _write(tmp_path / "data")
    packed = gzip_copy(data / "shd_train.h5", data / "shd_train.h5.gz")
    cache_dir = tmp_path / "cache"
    target = files.readable_copy(packed, cache_dir)
    complete = target.read_bytes()
    # A job killed while decompressing leaves its temporary file next to the final name, never the name.
    target.unlink()
    leftover = target.with_name(f".{target.name}.abc123{TEMP_SUFFIX}")
    leftover.write_bytes(complete[: len(complete) // 2])
    assert files.readable_copy(packed, cache_dir) == target and target.read_bytes() == complete


def test_full_disk_while_decompressing_names_cache_dir(tmp_path: Path, monkeypatch) -> None:
    data = _write(tmp_path / "data")
    packed = gzip_copy(data / "shd_train.h5", data / "shd_train.h5.gz")

    class FullDisk:
        def __init__(self, path, mode):
            self.fh = open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, chunk):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "open", FullDisk, raising=False)
    cache_dir = tmp_path / "cache"
    expected = rf"cache_dir={cache_dir} is not valid; cannot write the decompressed copy .*No space left on device"
    with pytest.raises(ConfigError, match=expected + ".*free space there or give another folder"):
        files.readable_copy(packed, cache_dir)
    assert not any((cache_dir / "downloads").iterdir())  # neither a copy nor a temporary file


def test_a_job_waiting_on_the_decompression_lock_reuses_the_other_jobs_copy(tmp_path: Path, monkeypatch) -> None:
    data = _write(tmp_path / "data")
    packed = gzip_copy(data / "shd_train.h5", data / "shd_train.h5.gz")
    first = files.readable_copy(packed, tmp_path / "first")  # what the other job will have written
    cache_dir = tmp_path / "cache"
    target = cache_dir / "downloads" / first.name
    result = {}

    def decompress_again(*args):
        raise AssertionError("decompressed a second time")

    monkeypatch.setattr(files, "_decompressed", decompress_again)
    with file_lock(cache_lock(cache_dir, target), timeout=1, what="test"):  # the other job is decompressing
        waiter = threading.Thread(target=lambda: result.setdefault("path", files.readable_copy(packed, cache_dir)))
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive()  # it waits for the lock
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(first, target)  # the other job finishes
    waiter.join(10)
    assert result["path"] == target


# ---------------------------------------------------------------- contents


def test_times_in_milliseconds_are_refused(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", times=[[100.0, 500.0, 1200.0], [0.3], [200.0, 900.0], [1000.0, 1100.0]])
    with pytest.raises(ConfigError, match=r"shd_train.h5: dataset.max_time=1.4 is not valid for these spike times; "
                                          r"88% of the spikes lie at or after 1.4 .*look like milliseconds or another "
                                          r"unit, but SHD stores seconds"):  # fmt: skip
        load_dataset(_cfg(data), tmp_path / "cache")


def test_a_few_late_spikes_are_dropped_silently(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", times=[[0.1, 0.5, 1.5], [0.3], [0.2, 0.9], [1.0, 2.0]])
    ds = load_dataset(_cfg(data), tmp_path / "cache")
    assert int(ds.spikes.counts.sum()) == 2 * 6  # 2 of 8 spikes per file dropped


def test_label_beyond_keys_is_refused(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", labels=(0, 1, 60000, 1), keys=["zero", "one"])
    with pytest.raises(ConfigError, match=r"shd_train.h5: labels\[2\]=60000 is not valid; extra/keys names 2 "
                                          r"classes, so a label must be 0..1"):  # fmt: skip
        load_dataset(_cfg(data), tmp_path / "cache")


def test_implausible_label_without_keys_is_refused(tmp_path: Path) -> None:
    data = _write(tmp_path / "data", labels=(0, 1, 60000, 1), keys=False)
    expected = r"labels\[2\]=60000 is not valid; the file has no extra/keys and 3 distinct labels"
    with pytest.raises(ConfigError, match=expected + r".*= 1000 \(it would make a readout of 60001 outputs\)"):
        load_dataset(_cfg(data), tmp_path / "cache")
    data = _write(tmp_path / "sparse", labels=(0, 1, 999, 1), keys=False)  # gaps below the limit are allowed
    assert load_dataset(_cfg(data), tmp_path / "cache").num_classes == 1000


def test_label_of_a_file_without_keys_beyond_the_other_files_keys_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_shd_file(data / "shd_train.h5", TIMES, UNITS, [0, 1, 2, 3], [0, 1, 0, 1])  # SHD's 20 keys
    write_shd_file(data / "shd_test.h5", TIMES, UNITS, [0, 1, 900, 3], [0, 1, 0, 1], keys=False)
    expected = (r"shd_test.h5: labels\[2\]=900 is not valid; the file has no extra/keys, and .*shd_train.h5's "
                r"extra/keys names 20 classes, so a label must be 0..19; fix the file's labels or give it extra/keys$")
    with pytest.raises(ConfigError, match=expected):
        load_dataset(_cfg(data), tmp_path / "cache")
    write_shd_file(data / "shd_test.h5", TIMES, UNITS, [0, 1, 19, 3], [0, 1, 0, 1], keys=False)  # named: fine
    assert load_dataset(_cfg(data), tmp_path / "cache").num_classes == 20


# ---------------------------------------------------------------- the binned cache


def test_binned_cache_that_cannot_be_saved_warns_once_and_goes_on(tmp_path: Path, monkeypatch, caplog) -> None:
    data = _write(tmp_path / "data")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache, "write_with", full)
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(_cfg(data), tmp_path / "cache")
    assert len(ds) == 8
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "could not save the binned data" in warnings[0] and "No space left" in warnings[0]
    assert not list((tmp_path / "cache" / "binned").glob("*.npz"))


def test_a_job_waiting_on_the_binning_lock_loads_the_other_jobs_entry(tmp_path: Path, monkeypatch) -> None:
    data = _write(tmp_path / "data")
    load_dataset(_cfg(data), tmp_path / "first")
    (built,) = (tmp_path / "first" / "binned").glob("*.npz")
    cache_dir = tmp_path / "cache"
    entry = cache_dir / "binned" / built.name  # same files and grid, so the same key
    result = {}

    def bin_again(*args):
        raise AssertionError("binned a second time")

    monkeypatch.setattr(shd, "_read_file", bin_again)
    with file_lock(cache_lock(cache_dir, entry), timeout=1, what="test"):  # the other job is binning
        waiter = threading.Thread(target=lambda: result.setdefault("ds", load_dataset(_cfg(data), cache_dir)))
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive()
        entry.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(built, entry)  # the other job saves its entry
    waiter.join(10)
    assert len(result["ds"]) == 8


# ---------------------------------------------------------------- the cache folder


@pytest.mark.parametrize("value", [None, "None", "null", ""])
def test_cache_dir_null_is_refused(value) -> None:
    expected = "^cache_dir=null is not valid; give a folder, e.g. cache_dir=outputs/cache$"
    with pytest.raises(ConfigError, match=expected):
        open_cache_dir(value)


def test_cache_dir_is_created_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = open_cache_dir("outputs/cache")
    assert folder == tmp_path / "outputs" / "cache" and folder.is_dir()
    assert list(folder.iterdir()) == []  # the write probe is gone


def test_cache_dir_that_cannot_be_created_or_written(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"cache_dir=.*file is not valid; .* is a file, not a folder; give a "
                                          r"writable folder"):  # fmt: skip
        open_cache_dir(tmp_path / "file")
    with pytest.raises(ConfigError, match=r"cache_dir=.*file/sub is not valid; cannot create .*Not a directory"):
        open_cache_dir(tmp_path / "file" / "sub")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ConfigError, match=r"cache_dir=.*full is not valid; cannot write into .*No space left on "
                                          r"device.*e.g. cache_dir=outputs/cache"):  # fmt: skip
        open_cache_dir(tmp_path / "full")
    monkeypatch.undo()
    assert list((tmp_path / "full").iterdir()) == []


def test_cache_dir_removes_stale_temporary_files(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    old = folder / "binned" / f".abc.npz.x1{TEMP_SUFFIX}"
    fresh = folder / "downloads" / f".shd_train.h5.x2{TEMP_SUFFIX}"
    other = folder / "binned" / "abc.npz"
    for path in (old, fresh, other):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    day_ago = time.time() - STALE_AFTER_S - 60
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    open_cache_dir(folder)
    assert not old.exists() and fresh.exists() and other.exists()


def test_cache_lock_lives_apart_from_the_entries(tmp_path: Path) -> None:
    assert cache_lock(tmp_path, tmp_path / "binned" / "k.npz") == tmp_path / "locks" / "binned-k.npz.lock"


def test_gzip_factory_round_trip(tmp_path: Path) -> None:
    """The corrupt-body test relies on gzip_copy writing a real gzip stream."""
    data = _write(tmp_path / "data")
    packed = gzip_copy(data / "shd_train.h5", tmp_path / "x.gz")
    assert gzip.decompress(packed.read_bytes()) == (data / "shd_train.h5").read_bytes()


def test_the_digits_experiment_without_its_data_says_what_it_expects_and_how_to_make_it(tmp_path: Path) -> None:
    import spikecl
    from spikecl.build import build

    cfg = spikecl.compose(["experiment=digits_progressive", f"dataset.root={tmp_path / 'nowhere'}"])
    with pytest.raises(ConfigError) as err:
        build(cfg.dataset, "dataset").load(tmp_path / "cache")
    message = str(err.value)
    for part in ("ten spoken digits (labels 0-9) in SHD format", "python -m spikecl.convert", "docs/convert.md",
                 "--test-takes 0-4", "dataset.root="):
        assert part in message, part
    assert "zenkelab" not in message  # not the SHD download
