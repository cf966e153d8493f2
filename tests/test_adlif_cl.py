"""Continual learning with adLIF neurons: latent replay at every depth and with every codec, the paper's
equivalence of uncompressed latent replay and rehearsal through frozen layers, checkpoints and resume."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Context, Strategy
from spikecl.cl.compression import Compression
from spikecl.data import ClassIncremental, Partition
from spikecl.run import run
from tests.factories import clustered_dataset, readout_plugin, replay_plugin
from tests.model_config import make_model

# adLIF at a scale that makes the tiny networks of these tests spike (see conf/model/adlif.yaml)
ADLIF = ["model=adlif", "model.hidden=[32,24,16]", "model.weight_scale=12.0", "model.readout_scale=0.5"]


def make_ctx(seed=0, dropout=0.0):
    data = clustered_dataset()
    tasks = ClassIncremental(new_class=3).tasks(data, Partition("merged", 0.25), seed)
    torch.manual_seed(seed)
    model = make_model("adlif", nb_inputs=24, hidden=[16, 12, 8], nb_outputs=4, weight_scale=12.0, readout_scale=1.0,
                       dropout=dropout)
    return Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"),
                   compression=Compression(ratio=1, codec="or_impulse", input_codec="sum_impulse",
                                               current_dtype="float32"), seed=seed)


def strategy(stores: str, depth: int) -> Strategy:
    plugins = {"readout": readout_plugin(), "replay": replay_plugin(stores, capacity=16, growth=4)}
    return Strategy(name="test", latent_depth=depth, epochs=2, lr=1e-2, batch_size=8, plugins=plugins,
                    optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))


@pytest.mark.parametrize("depth,dropout", [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0), (1, 0.2)])
def test_uncompressed_latent_replay_equals_rehearsal_through_frozen_layers(depth, dropout):
    # replaying the activity stored at depth d is replaying the raw inputs through the frozen layers below
    # d, the adLIF neurons' own parameters included (frozen below d, trained above), with dropout too
    weights = []
    for stores in ("latent", "raw"):
        ctx = make_ctx(dropout=dropout)
        with torch.no_grad():
            spikes = ctx.model.hidden_spikes(torch.as_tensor(ctx.data.spikes.dense(np.arange(8))))
        assert all(0 < float(s.mean()) < 0.5 for s in spikes), "the test needs spiking activity"
        s = strategy(stores, depth)
        for task in range(1, len(ctx.tasks)):
            s.learn(ctx, task)
        weights.append(dict(ctx.model.named_parameters()))
    model = make_ctx().model
    trained = {id(p) for p in model.layer_parameters(depth)}
    for name, p in model.named_parameters():
        assert torch.equal(weights[0][name], weights[1][name]), name
        assert torch.equal(weights[0][name], p) != (id(p) in trained), name  # trained above d, frozen below


CASES = [(0, "1to2", "sum_impulse"), (1, "1to2", "or_impulse"), (2, "1to4", "count_burst"), (3, "1to4", "count_spread")]


@pytest.mark.parametrize("depth,ratio,codec", CASES)
def test_latent_replay_runs_at_every_depth_and_codec(compose_cfg, tmp_path, depth, ratio, codec):
    key = "current" if depth == 0 else "spikes"
    cfg = compose_cfg(*ADLIF, "strategy=latent_replay", f"strategy.latent_depth={depth}", f"compression={ratio}",
                      *([] if depth == 0 else [f"compression.codec={codec}"]))
    summary = run(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["latent_depth"] == depth
    assert summary["buffer_samples"] > 0
    stored = {r["codec"] for r in summary["replay_activity"]}
    assert stored == {codec if depth else "sum_impulse"}, key
    if depth:  # spikes are stored as bits (or counts), never as floats
        assert summary["bytes_per_sample"] < 4 * cfg.dataset.nb_steps * 32 / int(ratio[3:])
    assert summary["neuron_updates_l1"] == 2 * 32 * cfg.dataset.nb_steps  # mem and adapt of 32 neurons


def test_checkpoints_keep_the_neurons_parameters_and_a_resumed_run_equals_the_whole_run(compose_cfg, tmp_path):
    cfg = compose_cfg(*ADLIF, "checkpoints=all")
    folder = tmp_path / "run"
    whole = run(cfg, folder)
    state = torch.load(folder / "checkpoints" / "task1.pt", weights_only=True)
    flat = json.dumps(sorted(_keys(state)))
    assert "neurons.0.alpha" in flat and "neurons.2.b" in flat
    for name in ("summary.json", "model.pt", "checkpoints/task2.pt"):
        (folder / name).unlink()
    resumed = run(cfg, folder)
    assert "resuming from" in (folder / "spikecl.log").read_text()
    for key in ("accuracy_matrix", "val_accuracy_matrix", "acc_all", "buffer_bytes"):
        assert resumed[key] == whole[key], key


def _keys(state, prefix=""):
    """Every key of a nested checkpoint dict."""
    for k, v in state.items():
        yield f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _keys(v, f"{prefix}{k}.")


def test_short_time_replay_runs_with_adlif(compose_cfg, tmp_path):
    # replayed minibatches run T / 2 steps under the model's time_scaled: alpha^2, beta^2 in every adLIF layer
    cfg = compose_cfg(*ADLIF, "plugin=short_replay", "strategy.plugins.replay.mix=interleaved", "compression=1to2")
    summary = run(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and "short_replay" in summary["plugins"]
