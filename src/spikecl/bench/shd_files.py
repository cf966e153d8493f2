"""SHD-format files of random spikes, for timing the data layer at full size and as a stand-in data set.

The files follow the schema of the published SHD files (shd-format.md): variable-length float16
``spikes/times`` and uint16 ``spikes/units``, uint16 ``labels`` and ``extra/speaker``, byte-string
``extra/keys``. Spike times are uniform in [0, ``max_time``) plus a few beyond it (dropped by binning, as
SHD's longest utterances are), units uniform over the channels, per-sample counts Poisson around a mean.
Everything is drawn in bulk; only the per-sample split into h5py's object array is a list of views.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

KEYS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun",
]  # fmt: skip


def write_random_shd(path: str | Path, nb_samples: int, mean_spikes: float, rng: np.random.Generator,
                     nb_units: int = 700, max_time: float = 1.4, nb_classes: int = 20,
                     nb_speakers: int = 12) -> int:
    """Write one SHD-format file of ``nb_samples`` random samples; returns the total number of spikes."""
    lengths = rng.poisson(mean_spikes, size=nb_samples)
    total = int(lengths.sum())
    times = rng.uniform(0.0, 1.02 * max_time, size=total).astype(np.float16)
    units = rng.integers(0, nb_units, size=total, dtype=np.uint16)
    bounds = np.cumsum(lengths)[:-1]
    with h5py.File(path, "w") as fh:
        for name, flat, base in (("spikes/times", times, np.float16), ("spikes/units", units, np.uint16)):
            per_sample = np.empty(nb_samples, dtype=object)
            per_sample[:] = np.split(flat, bounds)
            fh.create_dataset(name, data=per_sample, dtype=h5py.vlen_dtype(base))
        fh.create_dataset("labels", data=rng.integers(0, nb_classes, size=nb_samples, dtype=np.uint16))
        fh.create_dataset("extra/speaker", data=rng.integers(0, nb_speakers, size=nb_samples, dtype=np.uint16))
        fh.create_dataset("extra/keys", data=np.array([k.encode() for k in KEYS[:nb_classes]]))
    return total


def write_random_shd_pair(folder: str | Path, nb_samples: int, mean_spikes: float, seed: int = 0,
                          test_fraction: float = 0.2) -> int:
    """``shd_train.h5`` and ``shd_test.h5`` with ``nb_samples`` samples in all; returns the total spikes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_test = round(nb_samples * test_fraction)
    return (write_random_shd(folder / "shd_train.h5", nb_samples - n_test, mean_spikes, rng)
            + write_random_shd(folder / "shd_test.h5", n_test, mean_spikes, rng))
