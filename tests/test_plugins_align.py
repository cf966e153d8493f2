"""Weight aligning: the new classes' readout columns get the old classes' mean norm."""

from __future__ import annotations

import pytest
import torch

from spikecl.cl.plugins.align import WeightAlign
from tests.model_config import make_model
from tests.plugin_context import make_ctx, set_, task

# Columns of W_out (4 neurons x 3 classes): norms 5, 10 and 2.
W = torch.tensor([[3.0, 0.0, 2.0], [4.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 8.0, 0.0]])


def aligned(tasks, at):
    model = make_model(nb_inputs=6, hidden=[5, 4], nb_outputs=3)
    set_(model.w_out, W)
    WeightAlign().after_task(make_ctx(model, 2, tasks), at)
    return model.w_out.detach()


def test_one_new_class_gets_the_mean_old_norm():
    w = aligned([task("pre", [0, 1]), task("new", [2])], 1)
    assert w[:, 2].norm().item() == pytest.approx(7.5)          # (5 + 10) / 2
    assert torch.allclose(w[:, 2], W[:, 2] * 7.5 / 2)            # same direction
    assert torch.equal(w[:, :2], W[:, :2])                       # old columns untouched


def test_several_new_classes_share_one_factor():
    w = aligned([task("pre", [0]), task("new", [1, 2])], 1)
    gamma = 5.0 / ((10.0 + 2.0) / 2)
    assert w[:, 1:].norm(dim=0).tolist() == pytest.approx([10.0 * gamma, 2.0 * gamma])
    assert w[:, 1:].norm(dim=0).mean().item() == pytest.approx(5.0)


def test_old_classes_are_those_of_every_earlier_task():
    w = aligned([task("pre", [0]), task("a", [1]), task("b", [2])], 2)
    assert w[:, 2].norm().item() == pytest.approx(7.5)


def test_no_new_class_changes_nothing():
    assert torch.equal(aligned([task("pre", [0, 1, 2]), task("speaker", [0, 1, 2])], 1), W)
