"""On-disk cache of binned data sets: ``<cache_dir>/binned/<key>.npz``.

The key hashes the identity of every input file (size, mtime, SHA-1 of the content), every binning
parameter and a format version, so any change of data or parameters selects a new entry. An entry is an
uncompressed ``.npz`` (fast to load); the zip CRC of each array, the stored key and the structural checks
of :class:`BinnedSpikes` reject a damaged file, which is then rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikecl.data.events import BinnedSpikes
from spikecl.utils.atomic import write_with

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class CachedData:
    """Everything a data set needs besides its name and file paths."""

    spikes: BinnedSpikes
    labels: np.ndarray
    speakers: np.ndarray
    from_test_file: np.ndarray
    class_names: list[str]
    from_valid_file: np.ndarray | None = None  # None: no validation file, all False


def cache_key(files: list[dict[str, Any]], nb_steps: int, max_time: float, nb_units: int) -> str:
    """Hex key of the input files' identities (in order) and the binning parameters."""
    payload = {
        "version": FORMAT_VERSION,
        "files": [{k: f[k] for k in ("size", "mtime_ns", "sha1")} for f in files],
        "nb_steps": int(nb_steps),
        "max_time": repr(float(max_time)),
        "nb_units": int(nb_units),
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def cache_path(cache_dir: Path, key: str) -> Path:
    """Where the entry of ``key`` lives."""
    return cache_dir / "binned" / f"{key}.npz"


def save(path: Path, key: str, data: CachedData) -> bool:
    """Write an entry atomically; False, with one warning, when the disk refuses it (full, read-only).

    The cache only saves time: a run whose entry cannot be saved goes on with its data in memory.
    """
    s = data.spikes
    arrays = {
        "key": np.array(key),
        "version": np.array(FORMAT_VERSION),
        "grid": np.array([s.nb_steps, s.nb_units], dtype=np.int64),
        "offsets": s.offsets,
        "steps": s.steps,
        "units": s.units,
        "counts": s.counts,
        "labels": data.labels,
        "speakers": data.speakers,
        "from_test_file": data.from_test_file,
        "from_valid_file": (
            np.zeros(len(data.labels), dtype=bool) if data.from_valid_file is None else data.from_valid_file
        ),
        "class_names": np.array(data.class_names, dtype=str),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
            np.savez(fh, **arrays)

    try:
        write_with(path, write)
    except OSError as exc:
        log.warning(
            "could not save the binned data to %s (%s); going on with the data in memory, and later runs bin "
            "the files again: free space there or set cache_dir to another folder", path, exc.strerror or exc,
        )
        return False
    return True


def load(path: Path, key: str) -> CachedData | None:
    """The entry at ``path`` if it exists and is intact and belongs to ``key``; else None (logged)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or int(z["version"]) != FORMAT_VERSION:
                raise ValueError("it belongs to other inputs or another format version")
            nb_steps, nb_units = (int(v) for v in z["grid"])
            spikes = BinnedSpikes(z["offsets"], z["steps"], z["units"], z["counts"], nb_steps, nb_units)
            # Entries written before validation files were read lack the marker; their inputs were a train
            # and a test file only, so no sample is from a validation file (same key, no rebuild needed).
            valid = z["from_valid_file"] if "from_valid_file" in z.files else np.zeros(len(spikes), dtype=bool)
            data = CachedData(
                spikes, z["labels"], z["speakers"], z["from_test_file"], [str(c) for c in z["class_names"]], valid
            )
        n = len(spikes)
        if not (len(data.labels) == len(data.speakers) == len(data.from_test_file) == len(valid) == n):
            raise ValueError("per-sample arrays disagree in length")
        if (data.labels.dtype != np.int64 or data.speakers.dtype != np.int64 or data.from_test_file.dtype != bool
                or valid.dtype != bool):
            raise ValueError("unexpected array types")
        if np.any(valid & data.from_test_file):
            raise ValueError("samples marked as from both the validation and the test file")
        return data
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("binned cache %s is unusable (%s); rebuilding it", path, exc)
        return None
