"""Tests of the synthetic SHD generator (spikecl.synth) and of the embedded data set it made.

Generator tests need the ``synth`` extra (numba, scipy, lauscher) and, where they speak, the espeak-ng
program; they skip cleanly without them. The embedded-file tests need only h5py.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import spikecl

EMBEDDED = Path(spikecl.__file__).parent / "data" / "embedded"
N_CLASSES = 20

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def _synth():
    """Import the generator modules, skipping when the optional extra is missing."""
    pytest.importorskip("numba")
    pytest.importorskip("scipy")
    pytest.importorskip("lauscher")
    from spikecl.synth import cochlea, generator, speech

    return cochlea, generator, speech


def _tiny_config(generator, cochlea, **kw):
    base = {"speakers": 1, "repetitions": 1, "test_speakers": 0, "test_fraction": 0.1, "seed": 3,
            "cochlea": cochlea.CochleaParams(channels=16)}
    base.update(kw)
    return generator.SynthConfig(**base)


def _open(path: Path) -> h5py.File:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return h5py.File(io.BytesIO(data), "r")


def _check_shd_schema(f: h5py.File, n_units: int) -> None:
    """The layout of shd-format.md, and sorted spike times inside every sample."""
    times, units = f["spikes/times"], f["spikes/units"]
    n = len(f["labels"])
    assert times.shape == units.shape == f["extra/speaker"].shape == (n,)
    assert h5py.check_vlen_dtype(times.dtype) == np.dtype(np.float16)
    assert h5py.check_vlen_dtype(units.dtype) == np.dtype(np.uint16)
    assert f["labels"].dtype == np.uint16
    assert np.issubdtype(f["extra/speaker"].dtype, np.integer)
    keys = f["extra/keys"][()]
    assert keys.shape == (N_CLASSES,) and all(isinstance(k, bytes) for k in keys)
    assert keys[0] == b"zero" and keys[10] == b"null"
    n_speakers = int(f["extra/speaker"][()].max()) + 1
    for name in ("gender", "age", "body_height"):
        assert f[f"extra/meta_info/{name}"].shape[0] >= n_speakers
    all_t, all_u = times[()], units[()]
    assert len(all_t) == n
    for t, u in zip(all_t, all_u):
        assert t.shape == u.shape and t.size > 0
        assert np.all(np.diff(t.astype(np.float64)) >= 0)
        assert t.astype(np.float64).min() >= 0
        assert int(u.max()) < n_units
    assert int(f["labels"][()].max()) < N_CLASSES


@needs_espeak
def test_one_utterance_is_sorted_in_range_and_reproducible():
    cochlea, generator, _ = _synth()
    cfg = _tiny_config(generator, cochlea)
    speaker = generator.make_plan(cfg).speakers[0]
    a = generator.synthesize_sample(cfg, speaker, label=2, repetition=0)
    b = generator.synthesize_sample(cfg, speaker, label=2, repetition=0)
    c = generator.synthesize_sample(cfg, speaker, label=2, repetition=1)
    assert a.times.size > 50
    assert np.all(np.diff(a.times) >= 0)
    assert a.times.min() >= 0 and a.times.max() <= a.duration
    assert a.units.dtype == np.uint16 and int(a.units.max()) < 16
    assert 0.2 < a.duration < 1.2
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.units, b.units)
    assert not (a.times.size == c.times.size and np.array_equal(a.times, c.times))


@needs_espeak
def test_too_long_utterance_names_max_duration():
    cochlea, generator, _ = _synth()
    cfg = _tiny_config(generator, cochlea, max_duration=0.1)
    speaker = generator.make_plan(cfg).speakers[0]
    with pytest.raises(ValueError, match="max_duration"):
        generator.synthesize_sample(cfg, speaker, label=7, repetition=0)


@needs_espeak
def test_generate_writes_shd_schema_with_provenance_and_same_seed_same_bytes(tmp_path):
    cochlea, generator, speech = _synth()
    cfg = _tiny_config(generator, cochlea)
    summary = generator.generate(cfg, tmp_path / "a", compress=True, progress=False)
    generator.generate(cfg, tmp_path / "b", compress=True, progress=False)
    assert summary["train_samples"] == 18 and summary["test_samples"] == 2
    for split in ("train", "test"):
        name = f"shd_{split}.h5.gz"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        with _open(tmp_path / "a" / name) as f:
            _check_shd_schema(f, n_units=16)
            assert f.attrs["generator_version"] == spikecl.__version__
            assert f.attrs["lauscher_version"] == "1.0.1"
            assert f.attrs["espeak_ng_version"] == speech.espeak_version()
            assert f.attrs["seed"] == 3 and f.attrs["split"] == split
            assert json.loads(f.attrs["parameters"])["cochlea"]["channels"] == 16
    with _open(tmp_path / "a" / "shd_train.h5.gz") as tr, _open(tmp_path / "a" / "shd_test.h5.gz") as te:
        labels = np.concatenate([tr["labels"][()], te["labels"][()]])
    np.testing.assert_array_equal(np.sort(labels), np.arange(N_CLASSES))


def test_plan_keeps_test_only_speakers_out_of_train():
    _, generator, _ = _synth()
    cfg = generator.SynthConfig(speakers=6, repetitions=3, test_speakers=2, test_fraction=0.1, seed=5)
    plan = generator.make_plan(cfg)
    assert plan.speaker.size == 6 * N_CLASSES * 3
    assert not np.isin(plan.speaker[~plan.test], plan.test_only_speakers).any()
    others = np.setdiff1d(np.arange(6), plan.test_only_speakers)
    held = np.array([(plan.test & (plan.speaker == s)).sum() for s in others])
    np.testing.assert_array_equal(held, round(0.1 * N_CLASSES * 3))
    again = generator.make_plan(cfg)
    np.testing.assert_array_equal(plan.test, again.test)
    assert plan.speakers == again.speakers
    assert len({(s.variant, s.english_voice) for s in plan.speakers}) == 6


def test_membrane_matches_lauscher_basilar_membrane():
    cochlea, _, _ = _synth()
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.helpers import CommandLineArguments
    from lauscher.transformations import BasilarMembrane, HanningWindow, RmsNormalizer

    CommandLineArguments().num_concurrent_jobs = 1
    t = np.arange(int(0.2 * cochlea.AUDIO_RATE)) / cochlea.AUDIO_RATE
    audio = np.sin(2 * np.pi * 700 * t) + 0.4 * np.sin(2 * np.pi * 3100 * t)
    wave = MonoAudioWave(audio.copy(), cochlea.AUDIO_RATE).transform(RmsNormalizer(0.3))
    ref = wave.transform(HanningWindow()).transform(BasilarMembrane(channels=8)).channels
    fast, n_steps = cochlea.Cochlea(cochlea.CochleaParams(channels=8), audio.size).membrane(audio)
    assert n_steps == ref.shape[1]
    err = np.abs(ref - fast[:, :n_steps]).max() / np.abs(ref).max()
    assert err < 5e-3


@pytest.mark.slow
def test_spike_counts_match_lauscher_reference_chain():
    """Both chains are stochastic: compare mean spike counts over seeds on a harmonic complex (40 channels,
    0.3 s; about 150 spikes a run). A 20 % error in the fibre refractoriness moves the mean by about 4
    standard errors; about 2 minutes, most of it in lauscher."""
    cochlea, _, _ = _synth()
    from spikecl.synth.compare import reference_spikes

    t = np.arange(int(0.3 * cochlea.AUDIO_RATE)) / cochlea.AUDIO_RATE
    audio = sum(np.sin(2 * np.pi * 150 * k * t) for k in range(1, 40)) * np.hanning(t.size)
    ref = np.array([reference_spikes(audio, 40, seed)[0].size for seed in range(8)])
    fast_cochlea = cochlea.Cochlea(cochlea.CochleaParams(channels=40), audio.size)
    fast = np.array([fast_cochlea.convert(audio, seed)[0].size for seed in range(40)])
    se = np.hypot(ref.std(ddof=1) / np.sqrt(ref.size), fast.std(ddof=1) / np.sqrt(fast.size))
    assert abs(ref.mean() - fast.mean()) < 3.5 * se


# ---- the shipped data set ----------------------------------------------------------------------------


def _embedded_paths() -> dict[str, Path]:
    paths = {}
    for split in ("train", "test"):
        found = [p for p in (EMBEDDED / f"shd_{split}.h5.gz", EMBEDDED / f"shd_{split}.h5") if p.exists()]
        assert found, f"embedded shd_{split}.h5(.gz) missing in {EMBEDDED}"
        paths[split] = found[0]
    return paths


def test_embedded_files_have_shd_schema_and_size():
    paths = _embedded_paths()
    total = sum(p.stat().st_size for p in EMBEDDED.iterdir() if p.is_file())
    assert total <= 16 * 2**20
    labels, speakers = [], {}
    for split, path in paths.items():
        with _open(path) as f:
            _check_shd_schema(f, n_units=700)
            assert f.attrs["generator"] == "spikecl.synth" and f.attrs["split"] == split
            counts = np.array([t.size for t in f["spikes/times"][()]])
            assert 1000 < np.median(counts) < 20000
            labels.append(f["labels"][()])
            speakers[split] = set(f["extra/speaker"][()].tolist())
    per_class = np.bincount(np.concatenate(labels), minlength=N_CLASSES)
    assert per_class.min() >= 40
    assert len(speakers["train"] | speakers["test"]) >= 12
    assert speakers["test"] - speakers["train"], "some speakers should appear only in the test file"
