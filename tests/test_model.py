"""The spiking network: equations against a hand-computed case, the fast path against the paper's
per-step formulation, and the latent-replay entry points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikecl.models import RSNN, class_scores
from spikecl.models.neurons import LIF
from spikecl.models.neurons.lif import LIFRecurrence, lif_spikes
from spikecl.models.readout import readout_kernel
from spikecl.models.reference import reference_forward, reference_layer, reference_loss
from spikecl.models.sparse import EventProjection, Events, group_by_column_numpy, group_by_column_torch
from tests.model_config import make_model

A, B = math.exp(-0.2), math.exp(-0.1)  # alpha, beta for dt 1 ms, tau_syn 5 ms, tau_mem 10 ms


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a second thread only adds waiting, which on a shared machine makes the
    reference's thousands of small operations up to ~100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model() -> RSNN:
    """1 input -> 2 recurrent LIF units -> 1 readout, with chosen weights."""
    m = make_model(nb_inputs=1, hidden=[2], nb_outputs=1)
    with torch.no_grad():
        m.w[0].copy_(torch.tensor([[1.5, 0.5]]))
        m.v[0].copy_(torch.tensor([[0.0, 2.0], [0.0, 0.0]]))   # unit 0's spikes drive unit 1
        m.w_out.copy_(torch.tensor([[1.0], [2.0]]))
    return m


def test_constants_are_the_papers():
    m = make_model()
    for neurons in m.neurons:
        assert neurons.alpha == pytest.approx(0.818731, abs=1e-6) and neurons.beta == pytest.approx(0.904837, abs=1e-6)
    assert (m.readout.alpha, m.readout.beta) == (m.neurons[0].alpha, m.neurons[0].beta)
    assert [tuple(p.shape) for p in m.w] == [(700, 200), (200, 100), (100, 50)]
    assert sum(p.numel() for p in m.parameters()) == 218_500


def test_hand_computed_two_units():
    # One input spike at t=0, weights W1 = [1.5, 0.5]. Worked out by hand from seed-spec 2.2:
    # t=0: mem=0 -> no spike; syn(1) = [1.5, 0.5]; mem(1) = 0 (uses the old syn)
    # t=1: mem=0 -> no spike; mem(2) = syn(1) = [1.5, 0.5]; syn(2) = A*[1.5, 0.5]
    # t=2: mem=[1.5, 0.5] -> unit 0 spikes; mem(3) = [0 (reset), B*0.5 + A*0.5 = 0.8618]; syn(3) = A^2*[1.5,0.5]
    # t=3: h = s(2) @ V = [0, 2]; mem [0, 0.8618] -> no spike;
    #      mem(4) = [A^2*1.5 = 1.0055, B*0.8618 + A^2*0.5 = 1.1149]; syn(4) = [A^3*1.5, A^3*0.5 + 2]
    # t=4: both units spike (1.0055 > 1, 1.1149 > 1) and reset: mem(5) = [0, 0]
    # t=5: mem 0 -> no spikes
    m = tiny_model()
    x = torch.zeros(1, 6, 1)
    x[0, 0, 0] = 1.0
    out, spikes = m.from_latent(m.input_current(x), 0, return_spikes=True)
    expected = torch.tensor([[0, 0], [0, 0], [1, 0], [0, 0], [1, 1], [0, 0]], dtype=torch.float32)
    assert torch.equal(spikes[0], expected)
    # readout: a(t) = s(t) @ W_out = [0, 0, 1, 0, 3, 0]; flt(t+1) = A flt + a(t); out(t+1) = B out + flt(t)
    # out(0..3) = 0; out(4) = flt(3) = 1; out(5) = B + flt(4) = B + A; out(6) = B*(B + A) + flt(5) = B(B+A) + A^2 + 3
    assert out.shape == (1, 7, 1)
    ref = [0, 0, 0, 0, 1.0, B + A, B * (B + A) + A * A + 3]
    assert out[0, :, 0].tolist() == pytest.approx(ref, rel=1e-6)
    assert class_scores(out).item() == pytest.approx(ref[-1], rel=1e-6)


def test_surrogate_gradient_by_hand():
    # s(2) of unit 0 = H(mem(2) - 1) with mem(2) = W1[0,0] * x(0) = 1.5, so
    # d s(2) / d W1[0,0] = 1 / (100 * |1.5 - 1| + 1)^2 = 1 / 51^2 (nothing else of s(2) depends on W1[0,0]).
    m = tiny_model()
    x = torch.zeros(1, 6, 1)
    x[0, 0, 0] = 1.0
    _, spikes = m.from_latent(m.input_current(x), 0, return_spikes=True)
    (grad,) = torch.autograd.grad(spikes[0, 2, 0], m.w[0])
    assert grad[0, 0].item() == pytest.approx(1 / 51**2, rel=1e-6)
    assert grad[0, 1].item() == 0.0


def test_readout_kernel_matches_recursion():
    k = readout_kernel(7, A, B, dtype=torch.float64)
    a = torch.randn(7, dtype=torch.float64)
    flt, out, rec = 0.0, 0.0, [0.0]
    for t in range(7):
        flt, out = A * flt + a[t].item(), B * out + flt
        rec.append(out)
    assert torch.allclose(k @ a, torch.tensor(rec, dtype=torch.float64))


def _random_model_and_input(batch=6, steps=40, seed=0):
    torch.manual_seed(seed)
    m = make_model(nb_inputs=80, hidden=[40, 30, 20], nb_outputs=5, weight_scale=6.0)
    x = (torch.rand(batch, steps, 80) < 0.1).float() * torch.randint(1, 3, (batch, steps, 80))
    return m, x


def test_fast_path_equals_per_step_reference():
    m, x = _random_model_and_input()
    out, spikes = m.from_latent(m.input_current(x), 0, return_spikes=True)
    ref_out, ref_spikes = reference_forward(m, x)
    assert spikes.sum() > 0, "the test needs spiking activity"
    assert torch.equal(spikes, ref_spikes)
    assert torch.allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    y = torch.randint(0, 5, (len(x),))
    loss = torch.nn.functional.cross_entropy(class_scores(out), y)
    ref_loss = torch.nn.functional.cross_entropy(class_scores(ref_out), y)
    grads = torch.autograd.grad(loss, list(m.parameters()))
    ref_grads = torch.autograd.grad(ref_loss, list(m.parameters()))
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6 * r.abs().max().item() + 1e-9)


def test_sparse_input_equals_dense():
    m, x = _random_model_and_input()
    dense = m(x)
    sparse = m(x.reshape(-1, 80).to_sparse_csr(), nb_steps=x.shape[1])
    assert torch.equal(dense, sparse) or torch.allclose(dense, sparse, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_run_from_latent_equals_full_run(depth):
    m, x = _random_model_and_input()
    with torch.no_grad():
        full = m(x)
        z = m.latent(x, depth)
        assert z.shape == (len(x), x.shape[1], m.latent_width(depth))
        assert torch.equal(m.from_latent(z, depth), full)


def test_batch_size_independence_and_determinism():
    m, x = _random_model_and_input()
    with torch.no_grad():
        together = m(x)
        alone = torch.cat([m(x[i:i + 1]) for i in range(len(x))])
    assert torch.allclose(together, alone, rtol=1e-5, atol=1e-4)  # matmul blocking differs with batch size
    m2, _ = _random_model_and_input()
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))


def test_trainable_parameters_per_depth():
    m = make_model()
    names = {id(p): n for n, p in m.named_parameters()}
    def trained(depth):
        return sorted(names[id(p)] for p in m.layer_parameters(depth))
    assert trained(None) == sorted(names.values())
    assert trained(0) == ["v.0", "v.1", "v.2", "w.1", "w.2", "w_out"]
    assert trained(1) == ["v.1", "v.2", "w.1", "w.2", "w_out"]
    assert trained(2) == ["v.2", "w.2", "w_out"]
    assert trained(3) == ["w_out"]
    with pytest.raises(ValueError, match="outside 0..3"):
        m.layer_parameters(4)


def test_no_recurrence_option():
    m = make_model(nb_inputs=10, hidden=[8], nb_outputs=2, recurrent=False)
    assert m.v is None
    out = m(torch.rand(2, 5, 10))
    assert out.shape == (2, 6, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    m, x = _random_model_and_input()
    out = m(x)
    out_cuda = m.cuda()(x.cuda()).cpu()
    assert torch.allclose(out, out_cuda, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# Fast paths (event-driven products, hand-written BPTT, latent replay) against the straightforward reference,
# with the event-driven products forced on and off, on the CPU and (when present) a CUDA device.


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _active_model_and_input(device, seed=0, batch=6, steps=30, recurrent=True):
    """A small network whose every layer spikes (a few to ~30 %), and sparse count input."""
    torch.manual_seed(seed)
    m = make_model(nb_inputs=60, hidden=[40, 30, 20], nb_outputs=5, weight_scale=3.0, recurrent=recurrent).to(device)
    x = ((torch.rand(batch, steps, 60) < 0.15).float() * torch.randint(1, 3, (batch, steps, 60))).to(device)
    y = torch.randint(0, 5, (batch,)).to(device)
    return m, x, y


def _fast_loss(m, out, y):
    return torch.nn.functional.nll_loss(torch.log_softmax(class_scores(out), dim=1), y)


def _assert_grads_close(grads, ref_grads):
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-5 * r.abs().max().item() + 1e-9)


@pytest.mark.parametrize("recurrent", [True, False])
def test_one_layer_equals_the_plain_equations(recurrent, products):
    # lif_spikes and LIFRecurrence against LIF.step and autograd through it
    torch.manual_seed(0)
    current = (torch.randn(30, 6, 40) * 0.8).requires_grad_()
    v = (torch.randn(40, 40) * 0.5).requires_grad_() if recurrent else None
    neurons = LIF(40, dt=1e-3, tau_syn=5e-3, tau_mem=10e-3, threshold=1.0, surrogate_scale=100.0)
    ref_spikes, (_, ref_mems) = reference_layer(neurons, current, v)
    run = lif_spikes(current.detach(), v.detach() if recurrent else None, A, B, 1.0, keep_membrane=True)
    spikes, _ = LIFRecurrence.apply(current, v, A, B, 1.0, 100.0, 0)
    assert 0 < ref_spikes.mean() < 0.5, "the test needs spiking activity"
    assert torch.equal(run.spikes, ref_spikes) and torch.equal(spikes, ref_spikes)
    assert torch.allclose(run.membranes, ref_mems, rtol=1e-6, atol=1e-6)
    grad = torch.randn(30, 6, 40)
    inputs = [current, v] if recurrent else [current]
    _assert_grads_close(torch.autograd.grad(spikes, inputs, grad), torch.autograd.grad(ref_spikes, inputs, grad))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("recurrent", [True, False])
def test_training_step_from_sparse_input_equals_reference(device, recurrent, products):
    m, x, y = _active_model_and_input(device, recurrent=recurrent)
    csr = x.reshape(-1, x.shape[2]).to_sparse_csr()
    out, spikes = m.from_latent(m.input_current(csr, x.shape[1]), 0, return_spikes=True)
    ref_out, ref_spikes = reference_forward(m, x)
    assert 0 < spikes.mean() < 0.5, "the test needs spiking activity"
    assert torch.equal(spikes, ref_spikes)
    assert torch.allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    loss, ref_loss = _fast_loss(m, out, y), reference_loss(m, x, y)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    params = list(m.parameters())
    _assert_grads_close(torch.autograd.grad(loss, params), torch.autograd.grad(ref_loss, params))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("stored", [torch.float32, torch.bool])
def test_latent_replay_step_equals_reference_with_frozen_layers(device, depth, stored, products):
    # spikecl trains from latents computed once; the paper recomputes the frozen layers from raw input
    m, x, y = _active_model_and_input(device)
    trained = m.layer_parameters(depth)
    for p in m.parameters():
        p.requires_grad_(any(p is q for q in trained))
    with torch.no_grad():
        z = m.latent(x.reshape(-1, x.shape[2]).to_sparse_csr(), depth, x.shape[1])
    if depth > 0:
        z = z.bool().to(stored)  # spikes as a latent cache may keep them
    out, spikes = m.from_latent(z, depth, return_spikes=True)
    assert spikes.dtype == torch.float32
    loss = _fast_loss(m, out, y)
    ref_loss = reference_loss(m, x, y)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    grads, ref_grads = torch.autograd.grad(loss, trained), torch.autograd.grad(ref_loss, trained)
    assert any(g.abs().sum() > 0 for g in ref_grads), "the test needs nonzero gradients"
    _assert_grads_close(grads, ref_grads)


@pytest.mark.parametrize("device", DEVICES)
def test_inference_equals_reference(device, products):
    m, x, _ = _active_model_and_input(device)
    with torch.inference_mode():
        out = m(x.reshape(-1, x.shape[2]).to_sparse_csr(), x.shape[1])
    with torch.no_grad():
        ref_out, _ = reference_forward(m, x)
    assert torch.allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    assert torch.equal(class_scores(out).argmax(1), class_scores(ref_out).argmax(1))


WIDE = 10**6  # a product width for which scanning for events always pays off


def _sparse_matrix(rows=50, cols=30, density=0.1, counts=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(rows, cols, generator=g) < density).float()
    return a * torch.randint(1, 4, (rows, cols), generator=g) if counts else a


@pytest.mark.parametrize("counts", [False, True])
def test_event_products_equal_dense_products(counts):
    a = _sparse_matrix(counts=counts)
    w, g = torch.randn(30, 7), torch.randn(50, 7)
    for events in (Events.of_spikes(a, WIDE, binary=not counts), Events.from_csr(a.to_sparse_csr())):
        assert torch.allclose(events.matmul(w), a @ w, atol=1e-5)
        assert torch.allclose(events.t_matmul(g), a.t() @ g, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_events_of_strided_views_follow_their_logical_order(dtype):
    a = _sparse_matrix(rows=4 * 12, cols=5, counts=dtype != torch.bool).view(4, 12, 5).to(dtype)
    w, g = torch.randn(5, 3), torch.randn(48, 3)
    for view in (a.transpose(0, 1), a[:, ::2]):  # [12, 4, 5] and [4, 6, 5], neither contiguous
        events = Events.of_spikes(view, WIDE, binary=False)
        dense = view.reshape(-1, 5).float()
        assert torch.allclose(events.matmul(w), dense @ w, atol=1e-5)
        assert torch.allclose(events.t_matmul(g[:len(dense)]), dense.t() @ g[:len(dense)], atol=1e-5)


def test_events_are_skipped_where_dense_products_are_cheaper():
    assert Events.of_spikes(torch.ones(10, 10), 1000) is None     # too dense
    assert Events.of_spikes(_sparse_matrix(), 10) is None         # too narrow a product to pay for the scan
    assert Events.of_spikes(_sparse_matrix(), 400) is not None
    assert Events.pay_off(0.01, 100) and not Events.pay_off(0.09, 100) and Events.pay_off(0.09, 400)


def test_event_projection_gradients_equal_dense_autograd():
    a = _sparse_matrix().requires_grad_()
    w = torch.randn(30, 7, requires_grad=True)
    g = torch.randn(50, 7)
    out = EventProjection.apply(a, w, Events.of_spikes(a, WIDE))
    ga, gw = torch.autograd.grad(out, (a, w), g)
    ra, rw = torch.autograd.grad(a @ w, (a, w), g)
    assert torch.allclose(out, a @ w, atol=1e-5)
    assert torch.allclose(ga, ra, atol=1e-5) and torch.allclose(gw, rw, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_input_projection_gradient_equals_dense(device):
    torch.manual_seed(0)
    x = _sparse_matrix(rows=40, cols=30, counts=True).to(device)
    w = torch.randn(30, 8, device=device, requires_grad=True)
    g = torch.randn(40, 8, device=device)
    (grad,) = torch.autograd.grad(EventProjection.apply(None, w, Events.from_csr(x.to_sparse_csr())), w, g)
    assert torch.allclose(grad, x.t() @ g, atol=1e-4)


def test_inputs_are_not_modified():
    m, x, _ = _active_model_and_input("cpu")
    z = m.input_current(x).detach().clone()
    before = z.clone()
    m.from_latent(z.requires_grad_(), 0).sum().backward()
    assert torch.equal(z.detach(), before)
    assert np.isfinite(z.grad.numpy()).all()


def test_step_loops_run_on_one_thread_and_restore_the_setting():
    m, x, _ = _active_model_and_input("cpu")
    torch.set_num_threads(2)
    try:
        m(x).sum().backward()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_column_grouping_is_the_same_with_numpy_and_torch():
    # the torch version is what a CUDA device runs; both must order events by (column, row)
    events = Events.from_csr(_sparse_matrix(rows=40, cols=300, density=0.05, counts=True).to_sparse_csr())
    a = group_by_column_numpy(events.rows, events.cols, events.values, 300)
    b = group_by_column_torch(events.rows, events.cols, events.values, 300)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


@pytest.mark.parametrize("weight_scale", [1.0, 3.0])
@pytest.mark.parametrize("depth", [1, 2])
def test_stored_spikes_are_multiplied_as_in_the_full_run(depth, weight_scale):
    # a layer wide enough for the event-driven recurrence; stored and recomputed spikes take the same path
    torch.manual_seed(0)
    m = make_model(nb_inputs=60, hidden=[150, 40, 20], nb_outputs=5, weight_scale=weight_scale)
    x = (torch.rand(8, 30, 60) < 0.15).float()
    with torch.no_grad():
        z = m.latent(x, depth)
        assert 0 < z.mean() < Events.MAX_DENSITY
        assert torch.equal(m.from_latent(z, depth), m(x))
        assert torch.equal(m.from_latent(z.bool(), depth), m(x))
