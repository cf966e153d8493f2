"""Nearest class mean: class means of the last hidden layer's spike counts over the buffer, nearest-mean
predictions, measured after pretraining and after every task."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from spikecl.cl import Strategy
from spikecl.cl.plugins import NearestClassMean, Replay
from spikecl.cl.plugins.ncm import class_means, features_of, nearest_mean, pooled
from tests.factories import readout_plugin, replay_plugin
from tests.plugin_context import toy_context

# Buffer features: class 0 at [2, 0] and [6, 0] (mean [4, 0]), class 5 twice at [0, 1] (mean [0, 1]).
FEATURES = torch.tensor([[2.0, 0.0], [0.0, 1.0], [6.0, 0.0], [0.0, 1.0]])
LABELS = torch.tensor([0, 5, 0, 5])


def test_class_means_and_nearest_mean_by_hand():
    classes, means = class_means(FEATURES, LABELS, normalize=False)
    assert classes.tolist() == [0, 5] and means.tolist() == [[4.0, 0.0], [0.0, 1.0]]
    # [2, 1.5] is 2.5 from [4, 0] and sqrt(4.25) = 2.06 from [0, 1]
    assert nearest_mean(torch.tensor([[2.0, 1.5], [3.0, 0.0]]), classes, means).tolist() == [5, 0]


def test_normalised_features_compare_directions():
    features = features_of(FEATURES[:, None, :].expand(4, 3, 2) / 3, normalize=True)  # counts over 3 steps
    assert torch.allclose(features, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    classes, means = class_means(features, LABELS, normalize=True)
    assert means.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # [2, 1.5] normalised is [0.8, 0.6]: 0.63 from [1, 0], 0.89 from [0, 1]; unnormalised it went to class 5
    sample = features_of(torch.tensor([[[2.0, 1.5]]]), normalize=True)
    assert nearest_mean(sample, classes, means).tolist() == [0]


def test_spike_counts_sum_over_time_and_silence_stays_zero():
    spikes = torch.zeros(2, 4, 3)
    spikes[0, :, 1] = 1
    spikes[0, 2, 2] = 1
    assert features_of(spikes, normalize=False).tolist() == [[0.0, 4.0, 1.0], [0.0, 0.0, 0.0]]
    assert features_of(spikes, normalize=True)[1].tolist() == [0.0, 0.0, 0.0]


def test_pooled_accuracy_weighs_tasks_by_their_samples():
    assert pooled(np.array([1.0, 0.5]), np.array([30, 10])) == pytest.approx(35 / 40)


def learned(**plugins):
    ctx = toy_context()
    plugins = {"readout": readout_plugin(), "replay": replay_plugin("latent", 16, 4, "mixed"), **plugins}
    s = Strategy(name="t", latent_depth=1, epochs=1, lr=1e-2, batch_size=8, plugins=plugins,
                 optimizer=partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))
    s.learn(ctx, 1)
    return ctx, s


def test_ncm_is_measured_after_pretraining_and_every_task_without_changing_weights():
    ctx, s = learned(ncm=NearestClassMean(normalize=True, batch_size=5))
    plain, _ = learned()
    assert all(torch.equal(a, b) for a, b in zip(ctx.model.parameters(), plain.model.parameters()))
    ncm, replay = s.plugin(NearestClassMean), s.plugin(Replay)
    assert set(ctx.tasks[1].train) & set(replay.buffer.sample_ids)  # the task's samples joined at its end
    figures = ncm.figures(ctx)
    matrix = np.array(figures["ncm_accuracy_matrix"])
    assert matrix.shape == (2, 2) and np.all((matrix >= 0) & (matrix <= 1))
    assert matrix[0, 1] == 0.0  # after pretraining the buffer has no sample of class 3: never predicted
    assert figures["ncm_forgetting"] == pytest.approx(matrix[0, 0] - matrix[1, 0])
    assert figures["ncm_acc_new_mean"] == pytest.approx(matrix[1, 1])
    sizes = np.array([len(t.test) for t in ctx.tasks])
    assert figures["ncm_acc_all"] == pytest.approx((matrix[1] * sizes).sum() / sizes.sum())
    # the measurement again, by hand: class means of the stored activity, nearest mean of every test sample
    with torch.inference_mode():
        stored = ctx.model.from_latent(replay.source.entry(np.arange(len(replay.source))), 1, return_spikes=True)[1]
        classes, means = class_means(features_of(stored, True), replay.source.labels, True)
        test = ctx.tasks[0].test
        x = ctx.model.latent(ctx.data.spikes.csr(test), 3, ctx.data.spikes.nb_steps)
        right = nearest_mean(features_of(x, True), classes, means) == torch.as_tensor(ctx.data.labels[test])
    assert matrix[1, 0] == pytest.approx(float(right.float().mean()))
    copy = NearestClassMean(normalize=True, batch_size=5)
    copy.load_state_dict(ncm.state_dict())
    assert copy.figures(ctx)["ncm_accuracy_matrix"] == figures["ncm_accuracy_matrix"]
    assert np.isnan(figures["val_ncm_acc_all"])  # the toy tasks have no validation part
