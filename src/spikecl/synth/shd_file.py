"""Write spike samples as an SHD file (``shd_train.h5`` layout), plain or gzip'd, atomically and byte-for-byte
reproducibly (no timestamps in the HDF5 objects or the gzip header)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from spikecl.utils.atomic import atomic_path


def write_shd(path: str | os.PathLike[str], times: Sequence[np.ndarray], units: Sequence[np.ndarray],
              labels: np.ndarray, speakers: np.ndarray, keys: Sequence[str],
              meta_info: Mapping[str, np.ndarray], attrs: Mapping[str, object]) -> Path:
    """Write one SHD file. ``times[i]`` (s) and ``units[i]`` are sample i's spikes, sorted by time;
    ``meta_info`` holds ``gender``, ``age``, ``body_height`` indexed by speaker id; ``attrs`` become root
    attributes (non-scalar values as JSON). A name ending in ``.gz`` is gzip'd."""
    dest = Path(path)
    with atomic_path(dest) as tmp:
        if dest.suffix == ".gz":
            raw = tmp.with_name(tmp.name + ".h5")
            try:
                _write_h5(raw, times, units, labels, speakers, keys, meta_info, attrs)
                # filename="" and mtime=0 keep the gzip header free of names and dates
                with open(raw, "rb") as src, open(tmp, "wb") as out, \
                        gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=out, mtime=0) as gz:
                    shutil.copyfileobj(src, gz)
            finally:
                raw.unlink(missing_ok=True)
        else:
            _write_h5(tmp, times, units, labels, speakers, keys, meta_info, attrs)
    return dest


def _write_h5(path: Path, times: Sequence[np.ndarray], units: Sequence[np.ndarray], labels: np.ndarray,
              speakers: np.ndarray, keys: Sequence[str], meta_info: Mapping[str, np.ndarray],
              attrs: Mapping[str, object]) -> None:
    n = len(times)
    if not (len(units) == len(labels) == len(speakers) == n):
        raise ValueError("times, units, labels and speakers must have one entry per sample")
    with h5py.File(path, "w", libver="earliest", track_order=False) as f:
        spikes = f.create_group("spikes")
        t_set = spikes.create_dataset("times", (n,), dtype=h5py.vlen_dtype(np.float16), track_times=False)
        u_set = spikes.create_dataset("units", (n,), dtype=h5py.vlen_dtype(np.uint16), track_times=False)
        t_set[:] = _ragged(times, np.float16)
        u_set[:] = _ragged(units, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16), track_times=False)
        extra = f.create_group("extra")
        extra.create_dataset("speaker", data=np.asarray(speakers, dtype=np.uint16), track_times=False)
        extra.create_dataset("keys", data=np.array([k.encode("utf-8") for k in keys]), track_times=False)
        meta = extra.create_group("meta_info")
        for name, values in meta_info.items():
            values = np.asarray(values)
            if values.dtype.kind == "U":
                values = np.char.encode(values, "utf-8")
            meta.create_dataset(name, data=values, track_times=False)
        for name, value in attrs.items():
            f.attrs[name] = value if isinstance(value, (str, int, float)) else json.dumps(value, sort_keys=True)


def _ragged(arrays: Sequence[np.ndarray], dtype: type) -> np.ndarray:
    """Object array of 1-D arrays, the form h5py writes to a variable-length dataset in one call."""
    out = np.empty(len(arrays), dtype=object)
    # element-wise: a slice assignment would turn equal-length arrays into a 2-D block
    for i, a in enumerate(arrays):
        out[i] = np.asarray(a, dtype=dtype)
    return out
