"""Reading SHD-format HDF5 files (shd-format.md) into a binned, cached :class:`SpikeDataset`.

Every per-sample dataset is read in one bulk call (h5py returns variable-length data as an object array
of per-sample arrays), validated, and binned in a vectorised pass. Files are opened read-only. Problems
in a file raise :class:`~spikecl.errors.ConfigError` naming the file and what is wrong.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch

from spikecl.errors import ConfigError
from spikecl.data import binning, cache, files
from spikecl.data.events import BinnedSpikes
from spikecl.utils.cache_dir import cache_lock
from spikecl.utils.locks import file_lock

log = logging.getLogger(__name__)

TIMES, UNITS, LABELS, SPEAKERS, KEYS = "spikes/times", "spikes/units", "labels", "extra/speaker", "extra/keys"
ORIGINS = ("train", "valid", "test")  # SpikeDataset.origin values, in the order of the samples
FILE_KEYS = {"train": "train_file", "valid": "valid_file", "test": "test_file"}  # origin -> dataset.<key>
# A job waits this long for another job that bins the same files (the full SHD: about a minute).
BINNING_LOCK_TIMEOUT_S = 3600.0
# Without extra/keys, a label at or above max(MAX_LABEL_WITHOUT_KEYS, LABEL_SPREAD x distinct labels) is a
# broken file, not a class: the readout would get max label + 1 outputs.
MAX_LABEL_WITHOUT_KEYS = 1000
LABEL_SPREAD = 10

if TYPE_CHECKING:
    from spikecl.data.torch_view import SpikeTorchDataset


@dataclass
class SpikeDataset:
    """A binned data set: spike counts, labels and speakers of every sample of its train, valid and test files.

    Samples of the train file come first, then those of the validation file (SSC has one; SHD none), then
    those of the test file (as the paper's merged file); ``from_test_file`` and ``from_valid_file`` mark
    them, ``origin`` names each sample's file. ``files`` are the user's files (not decompressed copies),
    in that order.
    """

    name: str
    spikes: BinnedSpikes
    labels: np.ndarray
    speakers: np.ndarray
    from_test_file: np.ndarray
    class_names: list[str]
    files: list[str]
    from_valid_file: np.ndarray | None = None  # None: no validation file, all False

    def __post_init__(self) -> None:
        n = len(self.spikes)
        if self.from_valid_file is None:
            self.from_valid_file = np.zeros(n, dtype=bool)
        if not (len(self.labels) == len(self.speakers) == len(self.from_test_file) == len(self.from_valid_file) == n):
            raise ValueError(
                "spikes, labels, speakers, from_test_file and from_valid_file must have one entry per sample"
            )
        if np.any(self.from_valid_file & self.from_test_file):
            raise ValueError("a sample cannot come from both the validation and the test file")

    @property
    def origin(self) -> np.ndarray:
        """The file each sample came from: ``'train'``, ``'valid'`` or ``'test'`` (one of ORIGINS), [N] str."""
        # Derived on every call, so in-place edits of from_test_file / from_valid_file are never out of sync.
        codes = self.from_valid_file.astype(np.int8) + 2 * self.from_test_file.astype(np.int8)
        return np.asarray(ORIGINS)[codes]

    def as_torch(
        self,
        indices: np.ndarray | Sequence[int] | slice | None = None,
        *,
        dense: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> SpikeTorchDataset:
        """A ``torch.utils.data.Dataset`` of the samples ``indices`` (all if None): ``(frames, label, speaker)``.

        Dense ``[T, U]`` frames (float32, or ``dtype``, e.g. ``torch.uint8`` counts) or sparse COO frames
        (``dense=False``; batch them with :func:`spikecl.data.torch_view.collate_sparse`). See
        :mod:`spikecl.data.torch_view`.
        """
        from spikecl.data.torch_view import SpikeTorchDataset  # torch's data utilities only when asked for

        return SpikeTorchDataset(self, indices, dense=dense, dtype=dtype, device=device)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Readout width: max label + 1, or the number of class names if that is larger."""
        return max(int(self.labels.max()) + 1 if len(self.labels) else 0, len(self.class_names))

    @property
    def classes(self) -> list[int]:
        """Sorted labels present in the data."""
        return [int(c) for c in np.unique(self.labels)]

    @property
    def speaker_ids(self) -> list[int]:
        """Sorted speaker ids present in the data."""
        return [int(s) for s in np.unique(self.speakers)]


@dataclass
class _FileContent:
    spikes: BinnedSpikes
    labels: np.ndarray
    speakers: np.ndarray
    class_names: list[str] | None


def input_files(dataset_cfg: Mapping[str, Any]) -> tuple[list[str], list[Path]]:
    """The origins (train, valid, test) and the paths of the files that ``dataset_cfg`` names (see
    :func:`load_dataset`); ConfigError for a missing file."""
    folder = files.data_root(dataset_cfg["root"])
    valid_file = dataset_cfg["valid_file"] if "valid_file" in dataset_cfg else None
    roles = [r for r in ORIGINS if r != "valid" or valid_file is not None]
    name = str(dataset_cfg["name"])
    return roles, [files.find_input(folder, str(dataset_cfg[FILE_KEYS[r]]), FILE_KEYS[r], name) for r in roles]


def load_dataset(dataset_cfg: Mapping[str, Any], cache_dir: str | Path) -> SpikeDataset:
    """Read ``train_file``, ``valid_file`` (if set) and ``test_file`` of ``dataset_cfg.root`` and bin them,
    via the on-disk cache.

    ``dataset_cfg`` keys: name, root (None: the embedded data set), train_file, valid_file (optional; None
    or absent: no validation file, as SHD), test_file, nb_steps, max_time, nb_units. Decompressed
    downloads, content hashes and binned data go under ``cache_dir``.
    """
    nb_steps, max_time, nb_units = _grid(dataset_cfg)
    cache_dir = Path(str(cache_dir)).expanduser()
    roles, sources = input_files(dataset_cfg)
    identities = [files.file_identity(p, cache_dir) for p in sources]
    key = cache.cache_key(identities, nb_steps, max_time, nb_units)
    entry = cache.cache_path(cache_dir, key)

    started = time.perf_counter()
    seen = _stamp(entry)
    data = cache.load(entry, key)
    how = None
    if data is None:
        # Parallel first jobs bin the files once: the others wait here, then load the first one's entry.
        with file_lock(cache_lock(cache_dir, entry), timeout=BINNING_LOCK_TIMEOUT_S, what="the binned data set"):
            if _stamp(entry) != seen:  # another job saved the entry while this one waited
                data = cache.load(entry, key)
            if data is None:
                parts = [_read_file(p, cache_dir, nb_steps, max_time, nb_units) for p in sources]
                _check_labels_across(parts, sources)
                origin = np.repeat(np.array(roles), [len(p.labels) for p in parts])
                data = cache.CachedData(
                    spikes=BinnedSpikes.concatenate([p.spikes for p in parts]),
                    labels=np.concatenate([p.labels for p in parts]),
                    speakers=np.concatenate([p.speakers for p in parts]),
                    from_test_file=origin == "test",
                    class_names=_class_names(parts),
                    from_valid_file=origin == "valid",
                )
                saved = cache.save(entry, key, data)
                how = f"read and binned in {time.perf_counter() - started:.1f} s, " + (
                    f"cached as {entry}" if saved else "not cached (see the warning above)")
    how = how or f"loaded from cache {entry} in {time.perf_counter() - started:.2f} s"

    ds = SpikeDataset(
        name=str(dataset_cfg["name"]),
        spikes=data.spikes,
        labels=data.labels,
        speakers=data.speakers,
        from_test_file=data.from_test_file,
        class_names=data.class_names,
        files=[str(p) for p in sources],
        from_valid_file=data.from_valid_file,
    )
    _log_summary(ds, how)
    return ds


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells two versions of a file apart (inode, size, mtime); None if it does not exist."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _grid(cfg: Mapping[str, Any]) -> tuple[int, float, int]:
    """Binning parameters, checked (the static config check also does; this guards direct callers)."""
    nb_steps, max_time, nb_units = int(cfg["nb_steps"]), float(cfg["max_time"]), int(cfg["nb_units"])
    for name, value in (("nb_steps", nb_steps), ("max_time", max_time), ("nb_units", nb_units)):
        if not value > 0:
            raise ConfigError(f"dataset.{name}={value} is not allowed; it must be > 0")
    return nb_steps, max_time, nb_units


def _read_file(source: Path, cache_dir: Path, nb_steps: int, max_time: float, nb_units: int) -> _FileContent:
    """Read and bin one SHD-format file (``source`` may be a .gz/.zip download)."""
    path = files.readable_copy(source, cache_dir)
    try:
        fh = open_readonly(path)
    except OSError as exc:
        raise ConfigError(f"{source}: not a readable HDF5 file ({exc})") from exc
    with fh:
        datasets = {p: _dataset(fh, p, source) for p in (TIMES, UNITS, LABELS, SPEAKERS)}
        sizes = {p: d.shape[0] if d.ndim == 1 else None for p, d in datasets.items()}
        if len(set(sizes.values())) != 1 or None in sizes.values():
            shown = ", ".join(f"{p} {'shape ' + str(datasets[p].shape) if n is None else n}" for p, n in sizes.items())
            raise ConfigError(
                f"{source}: the per-sample datasets disagree ({shown}); each must be 1-D with one entry "
                "per sample"
            )
        for p, kinds in ((TIMES, "f"), (UNITS, "iu")):
            base = h5py.check_vlen_dtype(datasets[p].dtype)
            if base is None or base.kind not in kinds:
                raise ConfigError(
                    f"{source}: {p} has type {base or datasets[p].dtype}; expected variable-length "
                    f"{'float' if kinds == 'f' else 'integer'} arrays, one per sample"
                )
        times, units = datasets[TIMES][...], datasets[UNITS][...]
        labels = _integers(datasets[LABELS][...], LABELS, source, non_negative=True)
        speakers = _integers(datasets[SPEAKERS][...], SPEAKERS, source, non_negative=False)
        class_names = _keys(fh, source)
    if not len(labels):
        raise ConfigError(f"{source}: the file holds no samples")
    _check_labels(labels, class_names, source)
    try:
        spikes = binning.bin_dataset(times, units, nb_steps, max_time, nb_units)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return _FileContent(spikes, labels, speakers, class_names)


def open_readonly(path: Path) -> h5py.File:
    """``path`` opened read-only, without HDF5's own file lock.

    A reader needs no lock (the files are never written in place: caches are replaced atomically), and
    cluster file systems without locks (some NFS and Lustre set-ups) make HDF5's lock fail with "unable to
    lock file ... No locks available". Where h5py (< 3.5) or its HDF5 (< 1.10.7, 1.12.0) cannot open without
    the lock, HDF5_USE_FILE_LOCKING=FALSE (unless set otherwise already) does the same for this process.
    """
    try:
        return h5py.File(path, "r", locking=False)
    except (TypeError, ValueError) as exc:  # TypeError: no such argument; ValueError: HDF5 refuses the option
        if "locking" not in str(exc):
            raise
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")  # HDF5 without the option reads it at every open
    return h5py.File(path, "r")


def _dataset(fh: h5py.File, name: str, source: Path) -> h5py.Dataset:
    node = fh.get(name)
    if not isinstance(node, h5py.Dataset):
        raise ConfigError(
            f"{source}: no dataset '{name}' in the file; an SHD-format file needs {TIMES}, {UNITS}, "
            f"{LABELS} and {SPEAKERS}"
        )
    return node


def _integers(values: np.ndarray, name: str, source: Path, non_negative: bool) -> np.ndarray:
    """``values`` as int64; any integer type is accepted."""
    if values.dtype.kind not in "iu":
        raise ConfigError(f"{source}: {name} has type {values.dtype}; expected integers")
    out = values.astype(np.int64)
    if non_negative and len(out) and out.min() < 0:
        raise ConfigError(f"{source}: {name} holds {out.min()} (sample {int(np.argmin(out))}); must be >= 0")
    return out


def _check_labels(labels: np.ndarray, class_names: list[str] | None, source: Path) -> None:
    """ConfigError for an implausible label, which would silently widen the readout to max label + 1.

    With ``extra/keys`` every label must index it (< len(keys)). Without keys, the largest label must stay
    below max(MAX_LABEL_WITHOUT_KEYS, LABEL_SPREAD x the number of distinct labels).
    """
    i = int(np.argmax(labels))
    top = int(labels[i])
    if class_names:
        if top >= len(class_names):
            raise ConfigError(
                f"{source}: {LABELS}[{i}]={top} is not valid; {KEYS} names {len(class_names)} classes, so a "
                f"label must be 0..{len(class_names) - 1}; fix the file's {LABELS} or its {KEYS}"
            )
        return
    distinct = len(np.unique(labels))
    limit = max(MAX_LABEL_WITHOUT_KEYS, LABEL_SPREAD * distinct)
    if top >= limit:
        raise ConfigError(
            f"{source}: {LABELS}[{i}]={top} is not valid; the file has no {KEYS} and {distinct} distinct "
            f"labels, and without keys a label must be below max({MAX_LABEL_WITHOUT_KEYS}, {LABEL_SPREAD} x "
            f"distinct labels) = {limit} (it would make a readout of {top + 1} outputs); fix the file's "
            f"{LABELS} (0..number of classes - 1) or add {KEYS}"
        )


def _check_labels_across(parts: list[_FileContent], sources: list[Path]) -> None:
    """ConfigError for a label of a file without ``extra/keys`` that the keys of another file do not name.

    Such a label would widen the readout beyond the named classes (900 next to SHD's 20 keys: 901 outputs),
    which the check of the file on its own allows (see :func:`_check_labels`).
    """
    named = next(((p.class_names, src) for p, src in zip(parts, sources) if p.class_names), None)
    if named is None:
        return
    names, where = named
    for part, source in zip(parts, sources):
        i = int(np.argmax(part.labels))
        top = int(part.labels[i])
        if part.class_names is None and top >= len(names):
            raise ConfigError(
                f"{source}: {LABELS}[{i}]={top} is not valid; the file has no {KEYS}, and {where}'s {KEYS} "
                f"names {len(names)} classes, so a label must be 0..{len(names) - 1}; fix the file's {LABELS} "
                f"or give it {KEYS}"
            )


def _keys(fh: h5py.File, source: Path) -> list[str] | None:
    """Class names from ``extra/keys`` (bytes or str), or None if the file has none."""
    node = fh.get(KEYS)
    if not isinstance(node, h5py.Dataset):
        return None
    raw = node[...]
    return [k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in np.ravel(raw).tolist()]


def _class_names(parts: list[_FileContent]) -> list[str]:
    """Names from the first file that has keys, extended with "class i" up to max label + 1."""
    names = next((p.class_names for p in parts if p.class_names is not None), [])
    num = max([len(names)] + [int(p.labels.max()) + 1 for p in parts])
    return list(names) + [f"class {i}" for i in range(len(names), num)]


def _log_summary(ds: SpikeDataset, how: str) -> None:
    roles = [r for r in ORIGINS if r != "valid" or len(ds.files) == len(ORIGINS)]  # as load_dataset read them
    origin = ds.origin
    read = " + ".join(f"{f} ({int(np.sum(origin == r))} samples)" for f, r in zip(ds.files, roles))
    log.info(
        "data set %s: %s; %d classes %s, %d speakers %s; %d steps x %d units, %d events (%.0f MB); %s",
        ds.name, read, len(ds.classes), ds.classes,
        len(ds.speaker_ids), ds.speaker_ids, ds.spikes.nb_steps, ds.spikes.nb_units,
        len(ds.spikes.steps), ds.spikes.nbytes / 2**20, how,
    )
