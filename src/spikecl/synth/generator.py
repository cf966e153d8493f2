"""Generate an SHD-format data set: synthetic speakers x 20 words x repetitions, through the fast cochlea.

Everything random derives from one seed (``numpy.random.SeedSequence``): the speakers from
``[seed, 0]``, each utterance's jitter and fibre noise from ``[seed, 1, speaker, label, repetition]``. A
sample's spikes therefore do not depend on which process converts it, and the same seed gives identical
files. Like SHD, ``test_speakers`` speakers appear only in the test file and ``test_fraction`` of every other
speaker's samples go to the test file too.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import spikecl
from spikecl.utils.parallel import parallel_map

from .cochlea import AUDIO_RATE, Cochlea, CochleaParams
from .shd_file import write_shd
from .speech import KEYS, Jitter, Speaker, espeak_version, make_speakers, utterance


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. ``max_duration`` (s) is the padded length of the cochlea's FFT: longer
    utterances are an error, shorter ones cost the same membrane FFT."""

    speakers: int = 12
    repetitions: int = 4
    test_speakers: int = 2
    test_fraction: float = 0.07
    seed: int = 0
    max_duration: float = 1.4
    jitter: Jitter = field(default_factory=Jitter)
    cochlea: CochleaParams = field(default_factory=CochleaParams)

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.repetitions < 1:
            raise ValueError("speakers and repetitions must be at least 1")
        if not 0 <= self.test_speakers < self.speakers:
            raise ValueError(f"test_speakers must be in [0, speakers - 1], got {self.test_speakers} of "
                             f"{self.speakers} speakers: the train file needs at least one speaker")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction}")

    def to_dict(self) -> dict[str, object]:
        """Plain nested dict, for provenance attributes."""
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """Who says what: one row per sample, and which samples go to the test file."""

    speakers: list[Speaker]
    speaker: np.ndarray
    label: np.ndarray
    repetition: np.ndarray
    test: np.ndarray
    test_only_speakers: np.ndarray


@dataclass(frozen=True)
class Sample:
    """Spikes of one converted utterance, with the audio duration, and the wall and CPU seconds its
    conversion took (CPU: this process only, so without the espeak-ng subprocess)."""

    times: np.ndarray
    units: np.ndarray
    duration: float
    wall_seconds: float
    cpu_seconds: float


def make_plan(cfg: SynthConfig) -> Plan:
    """Speakers, the (speaker, label, repetition) grid and the train/test assignment, all from the seed."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0]))
    speakers = make_speakers(cfg.speakers, rng)
    spk, lab, rep = (a.ravel() for a in np.meshgrid(np.arange(cfg.speakers), np.arange(len(KEYS)),
                                                      np.arange(cfg.repetitions), indexing="ij"))
    test_only = np.sort(rng.choice(cfg.speakers, size=cfg.test_speakers, replace=False))
    test = np.isin(spk, test_only)
    per_speaker = len(KEYS) * cfg.repetitions
    n_held = round(cfg.test_fraction * per_speaker)
    # samples are grouped by speaker, so row s * per_speaker + j is speaker s's j-th sample
    for s in np.setdiff1d(np.arange(cfg.speakers), test_only):
        test[s * per_speaker + rng.choice(per_speaker, size=n_held, replace=False)] = True
    return Plan(speakers, spk, lab, rep, test, test_only)


def sample_seeds(seed: int, speaker: int, label: int, repetition: int) -> tuple[np.random.Generator, int]:
    """The jitter generator and the cochlea's fibre-noise seed of one sample."""
    jitter_state, cochlea_seed = np.random.SeedSequence([seed, 1, speaker, label, repetition]).generate_state(2)
    return np.random.default_rng(int(jitter_state)), int(cochlea_seed)


_COCHLEA: Cochlea | None = None


def _cochlea(params: CochleaParams, max_samples: int) -> Cochlea:
    """This process's converter; built once (a forked worker inherits the parent's)."""
    global _COCHLEA
    if _COCHLEA is None or _COCHLEA.params != params or _COCHLEA.max_samples < max_samples:
        _COCHLEA = Cochlea(params, max_samples)
    return _COCHLEA


def synthesize_sample(cfg: SynthConfig, speaker: Speaker, label: int, repetition: int) -> Sample:
    """Speak and convert one sample (deterministic given the config and the sample's coordinates)."""
    wall, cpu = time.perf_counter(), time.process_time()
    rng, cochlea_seed = sample_seeds(cfg.seed, speaker.id, label, repetition)
    audio = utterance(speaker, label, cfg.jitter, rng)
    max_samples = round(cfg.max_duration * AUDIO_RATE)
    if audio.size > max_samples:
        raise ValueError(f"speaker {speaker.id} saying {KEYS[label]!r} lasts {audio.size / AUDIO_RATE:.2f} s, "
                         f"longer than max_duration={cfg.max_duration} s; raise max_duration")
    times, units = _cochlea(cfg.cochlea, max_samples).convert(audio, cochlea_seed)
    return Sample(times.astype(np.float32), units, audio.size / AUDIO_RATE, time.perf_counter() - wall,
                  time.process_time() - cpu)


def convert_all(cfg: SynthConfig, plan: Plan, jobs: int = 1, progress: bool = True) -> list[Sample]:
    """Convert every planned sample, in ``jobs`` processes, with a progress bar."""
    tasks = [(cfg, plan.speakers[s], int(lab), int(r))
             for s, lab, r in zip(plan.speaker, plan.label, plan.repetition)]
    # build the converter (transfer matrix, compiled loop) before forking, so workers share it
    _cochlea(cfg.cochlea, round(cfg.max_duration * AUDIO_RATE))
    return parallel_map(synthesize_sample, tasks, jobs, desc="synth", unit="sample", progress=progress)


def provenance(cfg: SynthConfig, plan: Plan, split: str) -> dict[str, object]:
    """File attributes: what made the file, with which versions and parameters (no dates, so that the same
    seed gives identical bytes)."""
    return {
        "generator": "spikecl.synth",
        "generator_version": spikecl.__version__,
        "espeak_ng_version": espeak_version(),
        "lauscher_version": importlib.metadata.version("lauscher"),
        "numba_version": importlib.metadata.version("numba"),
        "split": split,
        "seed": cfg.seed,
        "parameters": cfg.to_dict(),
        "speakers": [s.to_dict() for s in plan.speakers],
        "test_only_speakers": [int(s) for s in plan.test_only_speakers],
    }


def generate(cfg: SynthConfig, out_dir: str | os.PathLike[str], jobs: int = 1, compress: bool = False,
             progress: bool = True) -> dict[str, object]:
    """Generate ``shd_train.h5`` and ``shd_test.h5`` (``.h5.gz`` with ``compress``) in ``out_dir``.

    Returns a summary: paths, sample counts, spikes per sample, durations, and CPU seconds per sample.
    """
    plan = make_plan(cfg)
    samples = convert_all(cfg, plan, jobs=jobs, progress=progress)
    meta = {
        "gender": np.array([s.gender for s in plan.speakers]),
        "age": np.array([s.age for s in plan.speakers], dtype=np.uint16),
        "body_height": np.array([s.body_height for s in plan.speakers], dtype=np.float64),
    }
    suffix = ".h5.gz" if compress else ".h5"
    paths = {}
    for split, mask in (("train", ~plan.test), ("test", plan.test)):
        idx = np.flatnonzero(mask)
        paths[split] = write_shd(
            Path(out_dir) / f"shd_{split}{suffix}",
            times=[samples[i].times for i in idx], units=[samples[i].units for i in idx],
            labels=plan.label[idx], speakers=plan.speaker[idx], keys=KEYS, meta_info=meta,
            attrs=provenance(cfg, plan, split))
    counts = np.array([s.times.size for s in samples])
    durations = np.array([s.duration for s in samples])
    return {
        "paths": {k: str(v) for k, v in paths.items()},
        "train_samples": int((~plan.test).sum()),
        "test_samples": int(plan.test.sum()),
        "spikes_per_sample": {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())},
        "duration_s": {"mean": float(durations.mean()), "min": float(durations.min()),
                       "max": float(durations.max())},
        "wall_s_per_sample": float(np.mean([s.wall_seconds for s in samples])),
        "cpu_s_per_sample": float(np.mean([s.cpu_seconds for s in samples])),
    }

