"""``python -m spikecl.convert``: sine-burst wav files named like FSDD become SHD files the loader reads."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

pytest.importorskip("numba")
pytest.importorskip("lauscher")
soundfile = pytest.importorskip("soundfile")

from spikecl.convert.__main__ import main  # noqa: E402
from spikecl.data import load_dataset  # noqa: E402

SPEAKERS = ("anna", "bob", "carl")


def burst(label: int, take: int, rate: int) -> np.ndarray:
    """0.15 s of a tone whose pitch says the label, in a Hann envelope."""
    t = np.arange(int(0.15 * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * (300 + 400 * label + 10 * take) * t) * np.hanning(t.size)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    for s, speaker in enumerate(SPEAKERS):
        for label in range(2):
            for take in range(2):
                rate = (8000, 16000, 44100)[s]  # any sample rate is resampled to 48 kHz
                soundfile.write(folder / f"{label}_{speaker}_{take}.wav", burst(label, take, rate), rate)
    return folder


def shd_cfg(root):
    return {"name": "mine", "root": str(root), "train_file": "shd_train.h5", "test_file": "shd_test.h5",
            "nb_steps": 20, "max_time": 0.2, "nb_units": 32}


def test_convert_by_speaker(audio_dir, tmp_path, capsys):
    out = tmp_path / "shd"
    assert main([str(audio_dir), str(out), "--test-speakers", "carl", "--channels", "32", "--jobs", "2",
                 "--class-names", "low,high", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["train_samples"], summary["test_samples"]) == (8, 4)
    data = load_dataset(shd_cfg(out), tmp_path / "cache")
    assert data.class_names == ["low", "high"]
    train, test = ~data.from_test_file, data.from_test_file
    assert sorted(data.labels[train].tolist()) == [0] * 4 + [1] * 4
    assert set(data.speakers[train].tolist()) == {0, 1} and set(data.speakers[test].tolist()) == {2}
    assert data.spikes.nnz_per_sample().min() > 0
    with h5py.File(out / "shd_test.h5") as f:
        assert f["extra/speaker_names"][()].tolist() == [b"anna", b"bob", b"carl"]
        assert f.attrs["generator"] == "spikecl.convert" and f.attrs["naming"] == "pattern:{label}_{speaker}_{take}"
        assert json.loads(f.attrs["cochlea"])["channels"] == 32 and "created" in f.attrs
    # seeded: the same command gives the same spikes
    assert main([str(audio_dir), str(tmp_path / "again"), "--test-speakers", "carl", "--channels", "32",
                 "--no-progress"]) == 0
    with h5py.File(out / "shd_train.h5") as a, h5py.File(tmp_path / "again" / "shd_train.h5") as b:
        assert all(np.array_equal(x, y) for x, y in zip(a["spikes/times"][()], b["spikes/times"][()]))


def test_convert_by_take_and_csv(audio_dir, tmp_path, capsys):
    assert main([str(audio_dir), str(tmp_path / "takes"), "--test-takes", "1", "--channels", "16",
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["test_samples"] == 6
    table = tmp_path / "labels.csv"
    with open(table, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "speaker", "split"])
        writer.writerows([[p.name, "yes" if p.name[0] == "1" else "no", p.stem.split("_")[1],
                           "test" if p.stem.endswith("_0") and "anna" in p.name else "train"]
                          for p in sorted(audio_dir.glob("*.wav"))])
    assert main([str(audio_dir), str(tmp_path / "csv"), "--labels", str(table), "--channels", "16",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["test_samples"] == 2 and summary["classes"] == {"0": "no", "1": "yes"}


def test_clear_errors(audio_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), str(tmp_path / "o")]) == 2
    assert "no audio files" in capsys.readouterr().err
    assert main([str(audio_dir), str(tmp_path / "o"), "--pattern", "{speaker}-{label}"]) == 2
    err = capsys.readouterr().err
    assert "does not match the pattern" in err and err.count("\n") == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "1_anna_0.wav").write_bytes(b"not audio")
    (broken / "0_anna_0.wav").write_bytes((audio_dir / "0_anna_0.wav").read_bytes())
    assert main([str(broken), str(tmp_path / "o")]) == 2
    assert "cannot read audio file" in capsys.readouterr().err
