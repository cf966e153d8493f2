"""The spiking network: equations against a hand-computed case, the fast path against the paper's
per-step formulation, and the latent-replay entry points."""

from __future__ import annotations

import math

import pytest
import torch

from spikecl.bench.reference import reference_forward
from spikecl.models.lif import RSNN, class_scores, readout_kernel

A, B = math.exp(-0.2), math.exp(-0.1)  # alpha, beta for dt 1 ms, tau_syn 5 ms, tau_mem 10 ms


def tiny_model() -> RSNN:
    """1 input -> 2 recurrent LIF units -> 1 readout, with chosen weights."""
    m = RSNN(nb_inputs=1, hidden=[2], nb_outputs=1)
    with torch.no_grad():
        m.w[0].copy_(torch.tensor([[1.5, 0.5]]))
        m.v[0].copy_(torch.tensor([[0.0, 2.0], [0.0, 0.0]]))   # unit 0's spikes drive unit 1
        m.w_out.copy_(torch.tensor([[1.0], [2.0]]))
    return m


def test_constants_are_the_papers():
    m = RSNN()
    assert m.alpha == pytest.approx(0.818731, abs=1e-6) and m.beta == pytest.approx(0.904837, abs=1e-6)
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
    m = RSNN(nb_inputs=80, hidden=[40, 30, 20], nb_outputs=5, weight_scale=6.0)
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
    m = RSNN()
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
    m = RSNN(nb_inputs=10, hidden=[8], nb_outputs=2, recurrent=False)
    assert m.v is None
    out = m(torch.rand(2, 5, 10))
    assert out.shape == (2, 6, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    m, x = _random_model_and_input()
    out = m(x)
    out_cuda = m.cuda()(x.cuda()).cpu()
    assert torch.allclose(out, out_cuda, rtol=1e-4, atol=1e-4)
