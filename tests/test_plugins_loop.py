"""Every method of spikecl.cl.plugins trains inside the real loop, on a toy data set, all at once."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Context, Strategy
from spikecl.cl.plugins import WeightAlign
from tests.example_plugin.l2_pull import L2Pull
from tests.factories import clustered_dataset, shipped_plugin
from tests.model_config import make_model
from tests.plugin_context import task


@pytest.mark.parametrize("latent_depth", [None, 1])
def test_plugins_run_in_the_loop(latent_depth):
    torch.manual_seed(0)
    data = clustered_dataset(n_per_class=6, classes=4, steps=12, units=8)
    idx = np.arange(len(data.labels))
    tasks = [task("pre", [0, 1], idx[data.labels < 2][::2]), task("c2", [2], idx[data.labels == 2]),
             task("c3", [3], idx[data.labels == 3])]
    model = make_model(nb_inputs=8, hidden=[6, 5], nb_outputs=4, weight_scale=3.0)
    plugins = {"ewc": shipped_plugin("ewc", batch_size=4), "si": shipped_plugin("si"), "lwf": shipped_plugin("lwf"),
               "l2": L2Pull(), "align": WeightAlign()}
    strategy = Strategy(name="t", latent_depth=latent_depth, epochs=2, lr=1e-2, batch_size=4,
                        optimizer=partial(torch.optim.Adamax, lr=1e-2), plugins=plugins)
    losses = []
    ctx = Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"), seed=0,
                  on_epoch=lambda t, e, loss: losses.append(loss))
    for t in (1, 2):
        strategy.learn(ctx, t)
    assert len(losses) == 4 and np.isfinite(losses).all()
    assert set(plugins["ewc"].fisher) == {n for n, p in model.named_parameters()
                                          if any(p is q for q in model.layer_parameters(latent_depth))}
    assert plugins["si"].importance.keys() == plugins["ewc"].fisher.keys()
    norms = model.w_out.detach().norm(dim=0)
    assert norms[3].item() == pytest.approx(norms[:3].mean().item(), rel=1e-5)
