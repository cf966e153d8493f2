"""A neuron type defined outside the package (tests/example_plugin/soft_lif.py, the worked example of
docs/extending.md) runs a whole experiment through ``model.neuron._target_``: pretraining, latent replay,
activity figures and synaptic operations, all through the model's interface."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch

from spikecl.models.reference import reference_layer
from spikecl.run import run
from tests.example_plugin import soft_lif
from tests.example_plugin.soft_lif import SoftResetLIF

ROOT = Path(__file__).resolve().parents[1]
NEURON = ["~model.neuron", "+model.neuron._target_=tests.example_plugin.soft_lif.SoftResetLIF",
          "+model.neuron._partial_=true", "+model.neuron.tau_mem=8", "+model.neuron.threshold=0.5"]


def test_the_docs_show_the_example_as_it_is():
    doc = (ROOT / "docs" / "extending.md").read_text()
    assert Path(soft_lif.__file__).read_text() in re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert "~model.neuron +model.neuron._target_=mypkg.soft_lif.SoftResetLIF +model.neuron._partial_=true" in doc


def test_its_equations_by_hand():
    # beta = exp(-1/2); input 2 every step, threshold 1: mem 2(1 - beta) = 0.787, then beta 0.787 + 0.787
    # = 1.264 -> spike, reset by subtraction to 0.264
    neurons = SoftResetLIF(1, tau_mem=2.0, threshold=1.0)
    b = torch.exp(torch.tensor(-0.5)).item()
    spikes, (mem,) = reference_layer(neurons, torch.full((3, 1, 1), 2.0), None)
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0]
    m1 = 2 * (1 - b)
    assert mem.flatten().tolist() == pytest.approx([0.0, m1, b * m1 + m1 - 1.0])


def test_a_tiny_experiment_runs_with_the_outside_neuron(compose_cfg, tmp_path):
    cfg = compose_cfg(*NEURON, "strategy=latent_replay", "strategy.latent_depth=1", "model.weight_scale=12.0", "model.readout_scale=0.5")
    summary = run(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and len(summary["accuracy_matrix"]) == 3
    rows = [r for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open()) if r["phase"] == "pretrain"]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])  # it learns
    assert 0 < summary["rate_l1"] < 1 and summary["synops_inference"] > 0
    assert summary["neuron_updates_l1"] == 32 * 1 * cfg.dataset.nb_steps  # one state variable per neuron
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert sorted(state) == ["v.0", "v.1", "v.2", "w.0", "w.1", "w.2", "w_out"]
    assert "tests.example_plugin.soft_lif.SoftResetLIF" in (tmp_path / "run" / "config.yaml").read_text()
