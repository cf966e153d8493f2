"""Real spoken digits (``../shared/data/fsdd-dev``, FSDD in SHD format): the SHD reader on real files, and the
progressive default on real voices. Skipped where the folder is absent (it is never part of the project).

The slow test runs ``experiment=digits_progressive`` (digits 0-4 pretrained for 40 epochs, then 5..9 one at a
time with latent replay, 40 epochs each) at seed 0 next to naive fine-tuning, and checks the figures of
docs/methods.md hold: latent replay keeps what it learned (backward transfer >= -0.05, the issue's target),
forgets the pretraining digits far less than naive, and learns the new digits (more than 0.6 on average
right after each, chance being 0.1). About 3 minutes on one core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import spikecl
from spikecl.build import build
from spikecl.cli import config_dir
from spikecl.run import run

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd-dev"
pytestmark = pytest.mark.skipif(not (FSDD / "shd_train.h5.gz").exists(), reason=f"{FSDD} is absent")


def test_the_shd_reader_reads_the_real_files(tmp_path):
    data = build(spikecl.compose(["dataset=shd", f"dataset.root={FSDD}"]).dataset, "dataset").load(tmp_path)
    assert len(data) == 1500 and data.spikes.nb_units == 700 and data.from_test_file.sum() == 150
    assert sorted(np.unique(data.labels).tolist()) == list(range(10))
    # 150 recordings of every digit, 500 of each of the three speakers; about 4,000 spikes per sample
    assert np.bincount(data.labels).tolist() == [150] * 10
    assert np.bincount(data.speakers).tolist() == [500] * 3
    assert 2_000 < int(data.spikes.counts.sum()) / len(data) < 8_000


@pytest.mark.trained_figures
@pytest.mark.slow
def test_the_progressive_default_keeps_what_it_learns_on_real_voices(tmp_path):
    out = {}
    for strategy in ("naive", "latent_replay"):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=[
                "experiment=digits_progressive", f"dataset.root={FSDD}", f"strategy={strategy}", "seed=0",
                f"cache_dir={tmp_path / 'cache'}", "progress=false", "plots=false", "device=cpu",
                "hydra/sweeper=basic"])
        out[strategy] = run(cfg, tmp_path / strategy)
    naive, lr = out["naive"], out["latent_replay"]
    assert naive["acc_all"] <= 0.15 and naive["forgetting"] > 0.6  # every sample becomes the newest digit
    assert lr["bwt"] >= -0.05, lr["bwt"]
    assert lr["forgetting"] < naive["forgetting"] - 0.5, (lr["forgetting"], naive["forgetting"])
    assert lr["acc_new_mean"] > 0.6 and lr["acc_all"] > 0.65, (lr["acc_new_mean"], lr["acc_all"])
