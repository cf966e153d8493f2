"""Audio files -> cochlea spikes -> ``shd_train.h5`` / ``shd_test.h5``, with the generator's cochlea chain.

Each file's fibre noise is seeded from ``[seed, crc32(relative file name)]``: a file's spikes depend neither
on the other files nor on the worker that converts it, and the same seed gives the same spikes.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

import spikecl
from spikecl.convert.audio import read_audio, resampled_length
from spikecl.convert.naming import Catalogue
from spikecl.errors import ConfigError
from spikecl.synth.cochlea import AUDIO_RATE, Cochlea, CochleaParams
from spikecl.synth.shd_file import write_shd
from spikecl.utils.atomic import atomic_path
from spikecl.utils.parallel import parallel_map


@dataclass(frozen=True)
class Converted:
    """Spikes of one file: times (s) and channels, and the audio's duration (s)."""

    times: np.ndarray
    units: np.ndarray
    duration: float


_COCHLEA: Cochlea | None = None  # this process's converter; forked workers inherit the parent's


def file_seed(seed: int, name: str) -> int:
    """The cochlea's fibre-noise seed of the file ``name`` (path relative to the audio folder)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode("utf-8"))]).generate_state(1)[0])


def _convert(path: Path, name: str, seed: int) -> Converted:
    audio = read_audio(path)
    try:
        times, units = _COCHLEA.convert(audio, file_seed(seed, name))
    except ValueError as err:  # silent audio, or longer than the padded length
        raise ConfigError(f"cannot convert {path}: {err}") from None
    return Converted(times.astype(np.float32), units, audio.size / AUDIO_RATE)


def convert_files(cat: Catalogue, params: CochleaParams, seed: int = 0, jobs: int = 1,
                  progress: bool = True) -> list[Converted]:
    """Convert every catalogued file, in ``jobs`` processes, with a progress bar."""
    global _COCHLEA
    pad = max(resampled_length(e.path) for e in cat.entries)
    # built before forking (transfer matrix, compiled loop), so the workers share it
    if _COCHLEA is None or _COCHLEA.params != params or _COCHLEA.max_samples < pad:
        _COCHLEA = Cochlea(params, pad)
    tasks = [(e.path, e.name, seed) for e in cat.entries]
    return parallel_map(_convert, tasks, jobs, desc="convert", unit="file", progress=progress)


def provenance(source: Path, naming: str, split_rule: str, seed: int, params: CochleaParams, split: str) -> dict:
    """Root attributes of a written file: where the audio came from and how it was converted."""
    return {
        "generator": "spikecl.convert",
        "generator_version": spikecl.__version__,
        "lauscher_version": importlib.metadata.version("lauscher"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source_folder": str(source.resolve()),
        "naming": naming,
        "split_rule": split_rule,
        "split": split,
        "seed": seed,
        "audio_rate": AUDIO_RATE,
        "cochlea": params.to_dict(),
    }


def write_split(path: Path, cat: Catalogue, spikes: list[Converted], mask: np.ndarray, attrs: dict) -> Path:
    """One SHD file of the samples in ``mask``, with ``extra/speaker_names`` (as the fsdd-dev files)."""
    idx = np.flatnonzero(mask)
    with atomic_path(path) as tmp:
        write_shd(tmp, times=[spikes[i].times for i in idx], units=[spikes[i].units for i in idx],
                  labels=cat.labels[idx], speakers=cat.speakers[idx], keys=cat.class_names, meta_info={},
                  attrs=attrs)
        with h5py.File(tmp, "a") as f:
            f["extra"].create_dataset("speaker_names", data=np.array([n.encode("utf-8") for n in cat.speaker_names]),
                                      track_times=False)
    return path


def convert_folder(source: str | Path, out_dir: str | Path, cat: Catalogue, naming: str, split_rule: str,
                   params: CochleaParams | None = None, seed: int = 0, jobs: int = 1,
                   progress: bool = True) -> dict[str, object]:
    """Convert the catalogued files of ``source`` into ``out_dir/shd_train.h5`` and ``shd_test.h5``.

    ``naming`` and ``split_rule`` describe how labels, speakers and the split were found (provenance).
    Returns a summary: paths, sample counts, classes, speakers, spikes per sample and durations.
    """
    params = params or CochleaParams()
    source, out = Path(source), Path(out_dir)
    spikes = convert_files(cat, params, seed, jobs, progress)
    paths = {split: write_split(out / f"shd_{split}.h5", cat, spikes, mask,
                                provenance(source, naming, split_rule, seed, params, split))
             for split, mask in (("train", ~cat.test), ("test", cat.test))}
    counts = np.array([s.times.size for s in spikes])
    durations = np.array([s.duration for s in spikes])
    return {
        "paths": {k: str(v) for k, v in paths.items()},
        "train_samples": int((~cat.test).sum()), "test_samples": int(cat.test.sum()),
        "classes": {i: name for i, name in enumerate(cat.class_names) if i in set(cat.labels.tolist())},
        "speakers": dict(enumerate(cat.speaker_names)),
        "spikes_per_sample": {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())},
        "duration_s": {"mean": float(durations.mean()), "max": float(durations.max())},
    }
