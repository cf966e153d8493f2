"""Activity and synaptic-operation metrics on a hand-made network whose spikes are worked out by hand."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from spikecl.measure import (compare_replay, count_activity, count_dataset, firing_metrics, measure,
                             synops_metrics)
from spikecl.models import RSNN
from tests.model_config import make_model
from tests.factories import binned_from_dense, clustered_dataset


def hand_net() -> RSNN:
    """2 inputs -> 3 -> 2 LIF neurons -> 2 outputs with both filters instantaneous (alpha = beta = 0): an input
    above threshold at step t makes a spike at t + 2, and the tiny recurrent weights change no spike."""
    net = make_model(nb_inputs=2, hidden=[3, 2], nb_outputs=2, neuron={"tau_syn": 1e-6, "tau_mem": 1e-6})
    with torch.no_grad():
        net.w[0].copy_(torch.tensor([[2.0, 2.0, 0.0], [0.0, 0.0, 2.0]]))    # fan-out 2, 1
        net.w[1].copy_(torch.tensor([[1.5, 0.0], [0.0, 0.5], [0.0, 0.5]]))  # fan-out 1, 1, 1
        net.v[0].fill_(1e-3)
        net.v[0][2].zero_()                                                # fan-out 3, 3, 0
        net.v[1].fill_(1e-3)                                               # fan-out 2, 2
        net.w_out.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))            # fan-out 1, 2
    return net


def hand_input(count: float = 1.0) -> torch.Tensor:
    """Unit 0 fires at steps 0 and 3 (the first with ``count`` spikes), unit 1 at step 1; T = 6."""
    x = torch.zeros(1, 6, 2)
    x[0, 0, 0], x[0, 3, 0], x[0, 1, 1] = count, 1.0, 1.0
    return x


def test_hand_made_spikes_rates_and_synops():
    net, x = hand_net(), hand_input()
    # layer 1: neurons 0 and 1 fire at steps 2 and 5, neuron 2 at step 3; layer 2: neuron 0 at step 4 only
    s1, s2 = net.latent(x, 1)[0], net.latent(x, 2)[0]
    assert s1.nonzero().tolist() == [[2, 0], [2, 1], [3, 2], [5, 0], [5, 1]]
    assert s2.nonzero().tolist() == [[4, 0]]
    counts = count_activity(net, x)
    m = {**firing_metrics(counts, step_seconds=0.014), **synops_metrics(net, counts, train_depth=1)}
    assert m["rate_l1"] == pytest.approx(5 / 18) and m["rate_l2"] == pytest.approx(1 / 12)
    assert m["rate_hz_l1"] == pytest.approx(5 / 18 / 0.014)
    assert m["silent_l1"] == 0 and m["silent_l2"] == 0.5 and m["silent_sample_l2"] == 0.5
    assert m["sparsity_l1"] == pytest.approx(13 / 18) and m["sparsity"] == pytest.approx(1 - 6 / 30)
    assert m["rate_input"] == pytest.approx(3 / 12)
    # effective ops: input events x fan-out; recurrences use the spikes of steps 0..T-2
    expected = {"ff_l1": 2 * 2 + 1 * 1, "rec_l1": 3 + 3 + 0, "ff_l2": 2 + 2 + 1, "rec_l2": 2, "readout": 1}
    for name, value in expected.items():
        assert m[f"synops_{name}"] == value, name
    assert m["synops_inference"] == 19 and m["synops_inference_acs"] == 19 and m["synops_inference_macs"] == 0
    assert m["synops_inference_dense"] == 6 * 2 * 3 + 5 * 3 * 3 + 6 * 3 * 2 + 5 * 2 * 2 + 6 * 2 * 2
    # training at depth 1: ff_l2 + rec_l2 + readout forward; weight gradients 5*2 + 1*2 + 1*2 accumulates;
    # input gradients of rec_l2 (5*2*2) and the readout (6*2*2), not of ff_l2 (its input is stored)
    assert m["synops_train_depth"] == 8
    assert m["synops_train_backward_acs"] == 14 and m["synops_train_backward_macs"] == 44
    assert m["synops_train_step"] == 66
    assert synops_metrics(net, counts, train_depth=0)["synops_train_depth"] == 14


def test_counts_above_one_are_macs_and_latent_entry_matches():
    net = hand_net()
    m = synops_metrics(net, count_activity(net, hand_input(count=2.0)))
    assert m["synops_inference_macs"] == 5 and m["synops_inference_acs"] == 14  # same events, input not binary
    z = net.latent(hand_input(), 1)
    from_latent = synops_metrics(net, count_activity(net, z, depth=1))
    assert from_latent["synops_train_depth"] == 8 and "synops_inference" not in from_latent


def test_sparse_input_batches_and_model_spikes_agree():
    data = clustered_dataset(n_per_class=6, steps=20, units=24)
    net = make_model(nb_inputs=24, hidden=[16, 12], nb_outputs=4, weight_scale=3.0)
    idx = np.arange(len(data))
    whole = count_activity(net, data.spikes.dense(idx))
    pooled = count_dataset(net, data.spikes, idx, batch_size=7)
    a, b = firing_metrics(whole), firing_metrics(pooled)
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k]) for k in a)
    assert synops_metrics(net, whole) == pytest.approx(synops_metrics(net, pooled))
    with torch.no_grad():
        top = net.latent(data.spikes.csr(idx), 2, data.spikes.nb_steps)
    assert float(whole.spikes[-1].sum()) == float(top.sum()) > 0
    x = binned_from_dense(np.ones((1, 3, 24), dtype=np.uint8))
    assert firing_metrics(count_dataset(net, x, [0]))["rate_input"] == 1.0


def test_replay_comparison_rates():
    data = clustered_dataset(n_per_class=4, steps=20, units=24)
    net = make_model(nb_inputs=24, hidden=[16, 12], nb_outputs=4, weight_scale=3.0)
    x = data.spikes.dense(np.arange(len(data)))
    rows = compare_replay(net, x, depth=1, ratios=[1, 4], codecs=["or_impulse", "count_burst"])
    assert [(r["ratio"], r["codec"]) for r in rows] == [(1, "or_impulse"), (1, "count_burst"),
                                                        (4, "or_impulse"), (4, "count_burst")]
    for r in rows[:2]:  # ratio 1 is the identity
        assert r["rate_ratio"] == 1.0 and r["rate_l2_replayed"] == r["rate_l2"]
    assert rows[2]["rate_ratio"] <= 1.0 and rows[3]["rate_ratio"] == pytest.approx(1.0)
    current = compare_replay(net, x, depth=0, ratios=[2], codecs=["sum_impulse"])[0]
    assert current["rate_ratio"] == pytest.approx(1.0) and "rate_l1_replayed" in current


def test_cost_on_the_default_test_set():
    """Prints the time to measure a default-sized network on an embedded-sized test set (no assertion on time:
    the default run takes about 180 s, so anything under a few seconds is well under 5 %)."""
    rng = np.random.default_rng(0)
    x = (rng.random((224, 100, 700)) < 0.02).astype(np.uint8)  # the embedded test set: 20 % of 1,120 samples
    spikes = binned_from_dense(x)
    net = make_model(weight_scale=2.0)
    start = time.perf_counter()
    m = measure(net, spikes, np.arange(len(spikes)), step_seconds=0.014, train_depth=1)
    seconds = time.perf_counter() - start
    print(f"\nmeasured {len(spikes)} samples in {seconds:.2f} s ({100 * seconds / 180:.2f} % of a 180 s default run)")
    assert math.isfinite(m["synops_inference"]) and m["samples"] == 224


def test_neuron_updates_are_counted_apart_from_synaptic_operations():
    # hand_net: T = 6 steps, layers of 3 and 2 LIF neurons (syn and mem: 2 state variables), 2 readout classes
    # (flt and out); training at depth 1 updates layer 2 and the readout only
    net = hand_net()
    m = synops_metrics(net, count_activity(net, hand_input()), train_depth=1)
    assert (m["neuron_updates_l1"], m["neuron_updates_l2"], m["neuron_updates_readout"]) == (36, 24, 24)
    assert m["neuron_updates_inference"] == 84 and m["neuron_updates_train_depth"] == 48
    assert m["synops_inference"] == 19  # unchanged by them


def test_adlif_activity_is_the_models_own_and_counts_its_adaptation():
    data = clustered_dataset(n_per_class=4, steps=20, units=24)
    torch.manual_seed(0)
    net = make_model("adlif", nb_inputs=24, hidden=[16, 12], nb_outputs=4, weight_scale=12.0)
    x = data.spikes.dense(np.arange(len(data)))
    counts = count_activity(net, x)
    with torch.no_grad():
        for k in (1, 2):
            assert float(counts.spikes[k - 1].sum()) == float(net.latent(x, k).sum()) > 0
    m = synops_metrics(net, counts)
    assert m["neuron_updates_l1"] == 20 * 16 * 2 and m["neuron_updates_l2"] == 20 * 12 * 2  # mem and adapt
    from_stored = count_activity(net, net.latent(x, 1).bool(), depth=1)
    assert torch.equal(from_stored.spikes[0], counts.spikes[1])
