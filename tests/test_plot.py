"""Spike plots: library functions on a toy data set and the RUN_DIR command on a fake run folder."""

from __future__ import annotations

import json
import numpy as np
import torch
from omegaconf import OmegaConf

from spikecl import plot
from spikecl.build import build_setup
from spikecl.plot import __main__ as plot_cli
from tests.factories import clustered_dataset
from tests.model_config import make_model


def is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_library_figures(tmp_path):
    data = clustered_dataset(n_per_class=3, steps=20, units=24)
    net = make_model(nb_inputs=24, hidden=[16, 12], nb_outputs=4, weight_scale=3.0)
    paths = plot.plot_sample(net, data, 2, tmp_path, step_s=0.014)
    assert [p.name for p in paths] == ["input.png", "layer1.png", "layer2.png"]
    paths.append(plot.plot_replay(net, data, 2, 1, 4, "count_spread", tmp_path, 0.014))
    paths.append(plot.plot_replay(net, data, 2, 0, 2, "sum_impulse", tmp_path, 0.014))
    paths.append(plot.plot_rate_histograms(net, data.spikes, np.arange(len(data)), tmp_path, 0.014))
    assert [p.name for p in paths[3:]] == ["replay_d1_count_spread_1to4.png", "replay_d0_sum_impulse_1to2.png",
                                           "rates.png"]
    assert all(is_png(p) for p in paths)


def test_command_on_a_run_folder(tmp_path, compose_cfg, capsys):
    cfg = compose_cfg("strategy=latent_replay", "strategy.latent_depth=1", "compression=1to2")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    setup = build_setup(cfg)  # the model as a run makes it: one output per class of the data set
    model = setup.model(nb_outputs=setup.files.load(setup.cache_dir).num_classes)
    torch.save(model.state_dict(), run / "model.pt")
    stored = {"depth": 1, "ratio": 2, "codec": "or_impulse"}  # what the replay plugin reports it stores
    (run / "summary.json").write_text(json.dumps({"status": "completed", "stored_activity": stored}))
    assert plot_cli.main([str(run), "--sample", "1", "--rate-samples", "8"]) == 0
    names = sorted(p.name for p in (run / "plots").iterdir())
    assert names == ["input.png", "layer1.png", "layer2.png", "layer3.png", "rates.png",
                     "replay_d1_or_impulse_1to2.png"]
    assert plot_cli.main([str(tmp_path / "missing")]) == 2
    assert "config.yaml is missing" in capsys.readouterr().err
