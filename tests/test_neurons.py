"""Neuron types: adLIF against a hand-computed case, every fast layer against its step-by-step equations
(forward exactly, gradients to float32 rounding), the network with adLIF against the step-by-step network,
and the time scaling of every neuron type against r plain steps."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from spikecl.errors import ConfigError
from spikecl.models import LIF, RSNN, AdLIF, class_scores
from spikecl.models.readout import LeakyReadout
from spikecl.models.reference import reference_forward, reference_layer, reference_loss
from tests.model_config import make_model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: a second thread only adds waiting (see test_model.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def adlif(width: int, **overrides) -> AdLIF:
    kwargs = {"tau_mem": [5.0, 25.0], "tau_adapt": [30.0, 120.0], "a": [-1.0, 1.0], "b": [0.0, 2.0],
              "threshold": 1.0, "surrogate_scale": 10.0, **overrides}
    return AdLIF(width, **kwargs)


def lif(width: int, **overrides) -> LIF:
    kwargs = {"dt": 1e-3, "tau_syn": 5e-3, "tau_mem": 10e-3, "threshold": 1.0, "surrogate_scale": 100.0,
              **overrides}
    return LIF(width, **kwargs)


def set_constants(neurons: AdLIF, alpha: float, beta: float, a: float, b: float) -> None:
    with torch.no_grad():
        for p, value in ((neurons.alpha, alpha), (neurons.beta, beta), (neurons.a, a), (neurons.b, b)):
            p.fill_(value)


# -------------------------------------------------------------------------------------------- adLIF by hand


def test_adlif_by_hand():
    # alpha 0.5, beta 0.75, a 0.5, b 1, threshold 1, a constant input h = 2 (every value below is exact in
    # float32). mem'[t] = 0.5 mem[t-1] + 0.5 (2 - adapt[t-1]); s[t] = mem'[t] > 1; mem[t] = mem'[t] (1 - s[t]);
    # adapt[t] = 0.75 adapt[t-1] + 0.25 (0.5 mem[t] + s[t]):
    # t=0: mem' 1.0 (not above 1): no spike, mem 1.0,         adapt 0.25 * 0.5 = 0.125
    # t=1: mem' 0.5 + 0.9375 = 1.4375: spike, mem 0,          adapt 0.09375 + 0.25 = 0.34375
    # t=2: mem' 0.5 * 1.65625 = 0.828125: no spike,           adapt 0.2578125 + 0.103515625 = 0.361328125
    # t=3: mem' 0.4140625 + 0.8193359375 = 1.2333984375: spike, mem 0, adapt 0.27099609375 + 0.25 = 0.52099609375
    # t=4: mem' 0.5 * 1.47900390625 = 0.739501953125: no spike
    neurons = adlif(1, tau_mem=[0.5, 100.0], tau_adapt=[0.5, 100.0])
    set_constants(neurons, 0.5, 0.75, 0.5, 1.0)
    current = torch.full((5, 1, 1), 2.0)
    spikes, (mem, adapt) = reference_layer(neurons, current, None)  # states at the start of each step
    assert spikes.flatten().tolist() == [0, 1, 0, 1, 0]
    assert mem.flatten().tolist() == [0.0, 1.0, 0.0, 0.828125, 0.0]
    assert adapt.flatten().tolist() == [0.0, 0.125, 0.34375, 0.361328125, 0.52099609375]
    fast, _ = neurons.run(current, None, 0)
    assert torch.equal(fast, spikes)


def test_adlif_constants_are_clamped_to_their_ranges():
    neurons = adlif(3, a=[0.0, 0.5])
    low, high = neurons.alpha_range
    assert low == pytest.approx(math.exp(-1 / 5)) and high == pytest.approx(math.exp(-1 / 25))
    assert all(((p >= lo) & (p <= hi)).all() for p, (lo, hi) in
               ((neurons.alpha, neurons.alpha_range), (neurons.beta, neurons.beta_range), (neurons.a, neurons.a_range)))
    with torch.no_grad():
        neurons.a.copy_(torch.tensor([-3.0, 0.25, 7.0]))
    _, _, a, _, _ = neurons.constants()
    assert a.tolist() == [0.0, 0.25, 0.5]
    current = (torch.randn(20, 4, 3) * 3).requires_grad_()
    spikes, _ = neurons.run(current, None, 0)
    (grad,) = torch.autograd.grad((spikes * torch.randn_like(spikes)).sum(), neurons.a)
    assert grad[0] == 0 and grad[2] == 0  # outside its range a constant takes no gradient


@pytest.mark.parametrize("key, value, message", [
    ("tau_mem", [25.0, 5.0], "tau_mem=\\[25, 5\\] is not valid; it must be a range low <= high"),
    ("tau_adapt", [0.0, 5.0], "of numbers > 0"),
    ("a", 1.0, "a=1.0 is not valid; give a range"),
    ("threshold", -1.0, "threshold=-1.0 is not valid")])
def test_bad_adlif_arguments_are_one_line_errors(key, value, message):
    with pytest.raises(ConfigError, match=message):
        adlif(4, **{key: value})


def test_a_bad_neuron_argument_names_its_key_in_the_model():
    args = {"nb_inputs": 4, "hidden": [3], "nb_outputs": 2, "recurrent": True, "weight_scale": 1.0,
            "readout_scale": 1.0, "dropout": 0.0, "readout": LeakyReadout(dt=1.0, tau_syn=5.0, tau_mem=10.0)}
    with pytest.raises(ConfigError, match=r"^neuron.threshold=-1.0 is not valid"):
        RSNN(**args, neuron=partial(AdLIF, tau_mem=[5, 25], tau_adapt=[30, 120], a=[0, 1], b=[0, 2],
                                    threshold=-1.0, surrogate_scale=10.0))
    with pytest.raises(ConfigError, match=r"model.neuron._partial_=true"):
        RSNN(**args, neuron=lif(3))


# --------------------------------------------------------------------- fast layers against the plain steps


NEURONS = {"lif": lambda w: lif(w), "adlif": lambda w: adlif(w)}


@pytest.mark.parametrize("kind", sorted(NEURONS))
@pytest.mark.parametrize("recurrent", [True, False])
def test_fast_layer_equals_the_plain_steps(kind, recurrent, products):
    torch.manual_seed(0)
    neurons = NEURONS[kind](40)
    scale = 0.8 if kind == "lif" else 3.0  # adLIF's input is scaled by 1 - alpha
    current = (torch.randn(30, 6, 40) * scale).requires_grad_()
    v = (torch.randn(40, 40) * 0.5).requires_grad_() if recurrent else None
    ref_spikes, _ = reference_layer(neurons, current, v)
    spikes, events = neurons.run(current, v, 10**6)
    assert 0.01 < ref_spikes.mean() < 0.5, "the test needs spiking activity"
    assert torch.equal(spikes, ref_spikes)
    if events is not None:
        assert torch.equal(events.matmul(torch.eye(40)), spikes.detach().reshape(-1, 40))
    with torch.no_grad():  # inference: the loop without a trace
        assert torch.equal(neurons.run(current, v, 0)[0], ref_spikes)
    grad = torch.randn(30, 6, 40)
    inputs = [current, *([v] if recurrent else []), *neurons.parameters()]
    for g, r in zip(torch.autograd.grad(spikes, inputs, grad), torch.autograd.grad(ref_spikes, inputs, grad)):
        assert r.abs().sum() > 0
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-5 * r.abs().max().item())


# --------------------------------------------------------------------- the adLIF network against the steps


def active_adlif_model(device="cpu", recurrent=True, seed=0):
    """A small adLIF network whose every layer spikes, and sparse count input."""
    torch.manual_seed(seed)
    m = make_model("adlif", nb_inputs=60, hidden=[40, 30, 20], nb_outputs=5, weight_scale=12.0,
                   recurrent=recurrent, dropout=0.0).to(device)  # the step-by-step network has no dropout
    x = ((torch.rand(6, 30, 60) < 0.15).float() * torch.randint(1, 3, (6, 30, 60))).to(device)
    y = torch.randint(0, 5, (6,)).to(device)
    return m, x, y


def _assert_grads_close(grads, ref_grads):
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-5 * r.abs().max().item() + 1e-9)


@pytest.mark.parametrize("recurrent", [True, False])
def test_adlif_training_step_equals_the_step_by_step_network(recurrent, products):
    m, x, y = active_adlif_model(recurrent=recurrent)
    out, spikes = m.from_latent(m.input_current(x.reshape(-1, 60).to_sparse_csr(), 30), 0, return_spikes=True)
    ref_out, ref_spikes = reference_forward(m, x)
    assert 0.01 < spikes.mean() < 0.5, "the test needs spiking activity"
    assert all(0 < s.mean() < 0.5 for s in m.hidden_spikes(x))
    assert torch.equal(spikes, ref_spikes)
    assert torch.allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    loss = torch.nn.functional.nll_loss(torch.log_softmax(class_scores(out), dim=1), y)
    ref_loss = reference_loss(m, x, y)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    params = list(m.parameters())
    assert len(params) == 1 + 3 + 3 * recurrent + 3 * 4  # W_out, W, V, each layer's alpha, beta, a, b
    _assert_grads_close(torch.autograd.grad(loss, params), torch.autograd.grad(ref_loss, params))


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_adlif_latent_replay_step_equals_the_network_with_frozen_layers(depth):
    m, x, y = active_adlif_model()
    trained = m.layer_parameters(depth)
    names = {id(p): n for n, p in m.named_parameters()}
    assert sorted(names[id(p)] for p in trained if "neurons" in names[id(p)]) == sorted(
        f"neurons.{k}.{c}" for k in range(depth, 3) for c in ("a", "alpha", "b", "beta"))
    for p in m.parameters():
        p.requires_grad_(any(p is q for q in trained))
    with torch.no_grad():
        z = m.latent(x, depth)
    if depth > 0:
        z = z.bool()
    loss = torch.nn.functional.nll_loss(torch.log_softmax(class_scores(m.from_latent(z, depth)), dim=1), y)
    ref_loss = reference_loss(m, x, y)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    grads, ref_grads = torch.autograd.grad(loss, trained), torch.autograd.grad(ref_loss, trained)
    assert any(g.abs().sum() > 0 for g in ref_grads)
    _assert_grads_close(grads, ref_grads)


def test_adlif_inference_and_stored_spikes_equal_the_full_run():
    m, x, _ = active_adlif_model()
    with torch.inference_mode():
        out = m(x.reshape(-1, 60).to_sparse_csr(), 30)
        for depth in range(4):
            assert torch.equal(m.from_latent(m.latent(x, depth), depth), out)
    with torch.no_grad():
        assert torch.allclose(out, reference_forward(m, x)[0], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ r steps in one step


def steps(neurons, h: torch.Tensor, state, n: int):
    """n plain steps on the same input h; the spikes of each and the final state."""
    out = []
    for _ in range(n):
        s, state = neurons.step(h, state)
        out.append(s)
    return out, state


@pytest.mark.parametrize("r", [2, 5])
def test_adlif_one_scaled_step_moves_the_membrane_as_r_steps_on_a_constant_input(r):
    # Without coupling (a = b = 0) the membrane is linear: r steps of mem' = alpha mem + (1 - alpha)(h - adapt)
    # on a constant h give alpha^r mem + (1 - alpha^r)(h - adapt) when adapt stays 0, and the adaptation
    # alone decays by beta^r: one step with alpha^r, beta^r does the same. (Threshold high: no spike.)
    neurons = adlif(4, a=[0.0, 0.0], b=[0.0, 0.0], threshold=100.0)
    torch.manual_seed(0)
    h = torch.randn(3, 4) * 5
    mem0 = torch.randn(3, 4)
    _, (mem_r, _) = steps(neurons, h, (mem0, torch.zeros(3, 4)), r)
    _, (_, adapt_r) = steps(neurons, torch.zeros(3, 4), (torch.zeros(3, 4), mem0), r)
    with neurons.time_scaled(r):
        _, (mem_1, _) = neurons.step(h, (mem0, torch.zeros(3, 4)))
        _, (_, adapt_1) = neurons.step(torch.zeros(3, 4), (torch.zeros(3, 4), mem0))
    assert torch.allclose(mem_1, mem_r, rtol=1e-5, atol=1e-5)
    assert torch.allclose(adapt_1, adapt_r, rtol=1e-5, atol=1e-6)
    _, (mem_unscaled, _) = neurons.step(h, (mem0, torch.zeros(3, 4)))
    assert (mem_unscaled - mem_r).abs().max() > 0.1  # the case tells scaled from unscaled constants


@pytest.mark.parametrize("r", [2, 5])
def test_lif_and_readout_scaled_steps_decay_as_r_steps(r):
    # The paper's LIF (and its readout) scale only the decays, alpha^r and beta^r: without input syn decays
    # exactly as over r steps, and so does mem where syn is 0. (With a constant input h, r steps add
    # h (1 - alpha^r) / (1 - alpha) to syn where one scaled step adds h: the paper's choice for short replay.)
    neurons = lif(4, threshold=100.0)
    torch.manual_seed(0)
    zero, value = torch.zeros(3, 4), torch.rand(3, 4)
    for state, which in (((value, zero), 0), ((zero, value), 1)):
        _, final = steps(neurons, zero, state, r)
        with neurons.time_scaled(r):
            _, scaled = neurons.step(zero, state)
        assert torch.allclose(scaled[which], final[which], rtol=1e-6)
    readout = LeakyReadout(dt=1e-3, tau_syn=5e-3, tau_mem=10e-3)
    impulse = torch.zeros(r * 4, 1, 1)
    impulse[0] = 1.0
    full = readout(impulse)[:, 0, 0]
    with readout.time_scaled(r):
        short = readout(impulse[:4])[:, 0, 0]
    # flt after the impulse decays by alpha per step: out[t+1] - beta out[t] = flt[t] = alpha^(t-1)
    assert short[2].item() == pytest.approx(full[2].item())   # flt[1] = 1 in both
    assert (short[3] - readout.beta ** r * short[2]).item() == pytest.approx(readout.alpha ** r)


@pytest.mark.parametrize("kind", ["rsnn", "adlif"])
def test_the_model_scales_every_layer_and_the_readout_inside_the_block_only(kind):
    m = make_model(kind, nb_inputs=10, hidden=[8, 6], nb_outputs=3, weight_scale=5.0, dropout=0.0)  # deterministic
    x = (torch.rand(2, 12, 10) < 0.3).float()
    z = m.latent(x, 1)
    before = m.from_latent(z, 1).detach()
    with m.time_scaled(3, threshold_scale=0.5):
        scaled = m.from_latent(z, 1).detach()
        for neurons in m.neurons:
            if kind == "rsnn":
                assert neurons.threshold == 0.5 and neurons.alpha == pytest.approx(math.exp(-0.2) ** 3)
            else:
                alpha, _, _, _, threshold = neurons.constants()
                assert threshold == 0.5 and torch.allclose(alpha, neurons.alpha.clamp(*neurons.alpha_range) ** 3)
        assert m.readout.beta == pytest.approx(math.exp(-0.1) ** 3)
    assert not torch.equal(scaled, before)
    assert torch.equal(m.from_latent(z, 1).detach(), before)


def test_dropout_acts_while_training_only():
    torch.manual_seed(0)
    m = make_model("adlif", nb_inputs=24, hidden=[16, 12], nb_outputs=4, weight_scale=12.0, dropout=0.3)
    plain = make_model("adlif", nb_inputs=24, hidden=[16, 12], nb_outputs=4, weight_scale=12.0, dropout=0.0)
    plain.load_state_dict(m.state_dict())
    x = (torch.rand(4, 20, 24) < 0.2).float()
    with torch.no_grad():  # no autograd: no dropout, even in training mode
        assert torch.equal(m(x), plain(x))
    m.eval()
    assert torch.equal(m(x), plain(x))
    m.train()
    out, spikes = m.from_latent(m.input_current(x), 0, return_spikes=True)
    _, plain_spikes = plain.from_latent(plain.input_current(x), 0, return_spikes=True)
    assert not torch.equal(out, plain(x))
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}  # the layer's own spikes are returned, not the dropped
    with pytest.raises(ConfigError, match="dropout=1.0 is not valid"):
        make_model(dropout=1.0)
