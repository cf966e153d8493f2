"""The network written out step by step (seed-spec 2.2-2.6 for the paper's LIF network): the plain statement
of what the fast model (:mod:`spikecl.models.rsnn`) computes, for any neuron type.

:func:`reference_forward` runs the whole network as the original ``run_snn`` does: dense input, one Python
loop over time steps with every layer updated inside it (each layer's neurons through their
:meth:`~spikecl.models.neurons.Neuron.step`, the readout through
:meth:`~spikecl.models.readout.LeakyReadout.step`), autograd through all of it. :func:`reference_layer` runs
one layer. The model tests use these as the oracle of every fast path, and the benchmark
(:mod:`spikecl.bench`) times spikecl against :func:`reference_loss`. They take the parameters of an
:class:`~spikecl.models.rsnn.RSNN`, so both sides run identical ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.models.neurons.base import Neuron
from spikecl.models.readout import class_scores
from spikecl.models.rsnn import RSNN


def reference_layer(neuron: Neuron, current: Tensor, recurrent: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One layer over all steps of a time-major current I [T, B, H] (V: ``recurrent`` [H, H] or None): its
    spikes s[0..T-1] [T, B, H], and each state variable (``neuron.state_names``) [T, B, H] as it was at the
    start of each step."""
    state = neuron.initial_state(current.shape[1], current)
    s = torch.zeros_like(current[0])
    spikes, states = [], []
    for t in range(len(current)):
        states.append(state)
        h = current[t] + s @ recurrent if recurrent is not None else current[t]  # h[t] = I[t] + s[t-1] @ V
        s, state = neuron.step(h, state)
        spikes.append(s)
    return torch.stack(spikes), tuple(torch.stack(v) for v in zip(*states))


def reference_forward(model: RSNN, x: Tensor) -> tuple[Tensor, Tensor]:
    """Readout record [B, T+1, C] and last-layer spikes [B, T, H_L] of ``model`` on dense input [B, T, U]."""
    batch, steps, _ = x.shape
    w = list(model.w)
    v = list(model.v) if model.v is not None else [None] * model.nb_layers
    neurons = list(model.neurons)
    s = [x.new_zeros(batch, n.width) for n in neurons]
    state = [n.initial_state(batch, x) for n in neurons]
    readout = (x.new_zeros(batch, model.nb_outputs), x.new_zeros(batch, model.nb_outputs))  # flt, out
    current1 = torch.einsum("btu,uh->bth", x, w[0])  # I_1[t] = x[t] @ W1 for all steps at once
    out_rec, spk_rec = [readout[1]], []
    for t in range(steps):
        for k in range(model.nb_layers):
            # layer k+1 is driven by layer k's spikes of the same step, and its own of the previous step
            current = current1[:, t] if k == 0 else s[k - 1] @ w[k]
            h = current + s[k] @ v[k] if v[k] is not None else current
            s[k], state[k] = neurons[k].step(h, state[k])
        out, readout = model.readout.step(s[-1] @ model.w_out, readout)
        out_rec.append(out)
        spk_rec.append(s[-1])
    return torch.stack(out_rec, dim=1), torch.stack(spk_rec, dim=1)


def reference_loss(model: RSNN, x: Tensor, y: Tensor) -> Tensor:
    """NLL of the log-softmax of the class scores (maximum of the readout over time), as the paper."""
    out, _ = reference_forward(model, x)
    return F.nll_loss(F.log_softmax(class_scores(out), dim=1), y)
