"""The embedded data set and the default run (`python -m spikecl` with no arguments)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
from hydra import compose, initialize_config_dir

from spikecl.cli import config_dir
from spikecl.data import load_dataset


def default_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_default_config_is_the_headline_experiment():
    cfg = default_cfg()
    assert cfg.dataset.name == "synthetic" and cfg.dataset.root is None
    assert cfg.split._target_ == "spikecl.data.Progressive"
    assert list(cfg.split.old_classes) == list(range(10)) and list(cfg.split.new_classes) == list(range(10, 20))
    assert cfg.strategy.name == "latent_replay" and cfg.strategy.latent_depth == 1
    assert cfg.compression.ratio == 2
    assert cfg.pretrain.lr == 2e-4 and cfg.pretrain.batch_size == 64


def test_embedded_files_pass_the_shd_reader(tmp_path):
    data = load_dataset(default_cfg().dataset, tmp_path)
    assert data.name == "synthetic" and len(data.speaker_ids) >= 12 and data.num_classes == 20
    assert np.bincount(data.labels).min() >= 40
    assert data.from_test_file.any() and not data.from_test_file.all()
    test_only = set(data.speakers[data.from_test_file]) - set(data.speakers[~data.from_test_file])
    assert test_only, "like SHD, some speakers appear only in the test file"
    assert data.class_names[0] == "zero" and data.class_names[10] == "null"
    spikes_per_sample = np.diff(data.spikes.offsets)
    assert spikes_per_sample.mean() > 1000  # binned events: thousands of spikes per sample, as SHD


def test_shortened_default_run_from_the_console_script(tmp_path):
    exe = shutil.which("spikecl")
    cmd = [exe] if exe else [sys.executable, "-m", "spikecl"]
    out = tmp_path / "run"
    proc = subprocess.run([*cmd, "pretrain.epochs=1", "strategy.epochs=1", "eval.every_epoch=false",
                           f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={out}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "synthetic" and summary["split"] == "progressive"
    assert len(summary["accuracy_matrix"]) == 11
    log = (out / "spikecl.log").read_text()
    assert "data set 'synthetic'" in log and "replay memory" in log and "raw rehearsal" in log
