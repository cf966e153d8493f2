"""Tiny SHD-format HDF5 files for tests, in the exact schema of the real files (shd-format.md).

``spikes/times`` are true variable-length float16 arrays, ``spikes/units`` variable-length uint16,
``labels`` and ``extra/speaker`` uint16, ``extra/keys`` byte strings and ``extra/meta_info`` per-speaker
data; per-sample datasets are resizable and chunked like the published files.
Use: ``from tests.shd_factory import write_shd_file, random_samples``.
"""

from __future__ import annotations

import gzip
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

SHD_KEYS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun",
]  # fmt: skip


def write_shd_file(
    path: str | Path,
    times_list: Sequence[Sequence[float]],
    units_list: Sequence[Sequence[int]],
    labels: Sequence[int],
    speakers: Sequence[int],
    keys: Sequence[str | bytes] | None | bool = None,
    meta: bool = True,
) -> Path:
    """Write an SHD-format file; returns its path.

    keys: None writes SHD's words for the labels present (``extra/keys`` of length max(20, max label + 1)),
    a sequence writes those names, False omits ``extra/keys``. meta=False omits ``extra/meta_info``.
    Lengths are written as given (even when they disagree), so tests can build broken files too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for name, data, base in (
            ("spikes/times", times_list, np.float16),
            ("spikes/units", units_list, np.uint16),
        ):
            values = np.empty(len(data), dtype=object)
            values[:] = [np.asarray(x, dtype=base) for x in data]
            f.create_dataset(
                name, shape=(len(data),), maxshape=(None,), chunks=True, dtype=h5py.vlen_dtype(base)
            )
            if len(data):
                f[name][...] = values
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16), maxshape=(None,), chunks=True)
        f.create_dataset(
            "extra/speaker", data=np.asarray(speakers, dtype=np.uint16), maxshape=(None,), chunks=True
        )
        if keys is None:
            n = max(20, int(max(labels, default=0)) + 1)
            keys = SHD_KEYS + [f"word{i}" for i in range(20, n)]
        if keys is not False:
            f.create_dataset("extra/keys", data=np.array([k if isinstance(k, bytes) else k.encode() for k in keys]))
        if meta:
            n_speakers = int(max(speakers, default=0)) + 1
            f.create_dataset("extra/meta_info/gender", data=np.array([b"female", b"male"] * n_speakers)[:n_speakers])
            f.create_dataset("extra/meta_info/age", data=np.arange(20, 20 + n_speakers, dtype=np.uint16))
            f.create_dataset("extra/meta_info/body_height", data=np.linspace(1.6, 1.9, n_speakers))
    return path


def random_samples(
    rng: np.random.Generator, n: int, max_spikes: int = 40, max_time: float = 1.5, nb_units: int = 700
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random per-sample float16 times (some beyond 1.4 s) and uint16 units; some samples are empty."""
    lengths = rng.integers(0, max_spikes + 1, size=n)
    lengths[:: max(n // 5, 1)] = 0
    times = [rng.uniform(0, max_time, size=k).astype(np.float16) for k in lengths]
    units = [rng.integers(0, nb_units, size=k).astype(np.uint16) for k in lengths]
    return times, units


def gzip_copy(src: Path, dest: Path) -> Path:
    """``dest`` = gzip of ``src`` (as the SHD site distributes the files)."""
    with open(src, "rb") as fin, gzip.open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dest


def zip_copy(src: Path, dest: Path, member: str | None = None) -> Path:
    """``dest`` = zip archive holding ``src`` as ``member`` (default: its own name)."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(src, arcname=member or src.name)
    return dest
