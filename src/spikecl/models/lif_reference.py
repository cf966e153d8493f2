"""The paper's network written out step by step (seed-spec 2.2-2.6): the plain statement of what the fast
model (:mod:`spikecl.models.lif`) computes.

A LIF layer, per time step t (all states start at zero, s[-1] = 0), is :func:`lif_step`::

    h[t]     = I[t] + s[t-1] @ V
    s[t]     = H(mem[t] - threshold)                  the spike is read before this step's update
    syn[t+1] = alpha * syn[t] + h[t]
    mem[t+1] = (beta * mem[t] + syn[t]) * (1 - s[t])  the previous synaptic current; the reset has no gradient

:func:`lif_layer` runs one layer over all steps, :func:`reference_forward` the whole network as the original
``run_snn`` does: dense input, one Python loop over time steps with every layer updated inside it, autograd
through all of it. The model tests use these as the oracle of every fast path, and the benchmark
(:mod:`spikecl.bench`) times spikecl against :func:`reference_loss`. They take the weights of an
:class:`~spikecl.models.lif.RSNN`, so both sides run identical parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.models.lif import RSNN


class SuperSpike(torch.autograd.Function):
    """H(x): Heaviside step (x > 0) forward, SuperSpike surrogate derivative 1 / (scale * |x| + 1)^2 backward."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.scale = scale
        out = torch.zeros_like(x)
        out[x > 0] = 1.0
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad / (ctx.scale * torch.abs(x) + 1.0) ** 2, None


def lif_step(current: Tensor, s: Tensor, syn: Tensor, mem: Tensor, recurrent: Tensor | None, alpha: float,
             beta: float, threshold: float, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """One time step of one LIF layer: (s[t], syn[t+1], mem[t+1]) from I[t], s[t-1], syn[t], mem[t]."""
    h = current + s @ recurrent if recurrent is not None else current  # h[t] = I[t] + s[t-1] @ V
    s = SuperSpike.apply(mem - threshold, scale)                        # s[t] = H(mem[t] - threshold)
    new_syn = alpha * syn + h                                           # syn[t+1]
    new_mem = (beta * mem + syn) * (1.0 - s.detach())                   # mem[t+1], from the old syn[t]
    return s, new_syn, new_mem


def lif_layer(current: Tensor, recurrent: Tensor | None, alpha: float, beta: float, threshold: float,
              scale: float) -> tuple[Tensor, Tensor]:
    """One LIF layer over all steps of a time-major current I [T, B, H] (V: ``recurrent`` [H, H] or None):
    its spikes s[0..T-1] and the membranes mem[0..T-1] they were read from, both [T, B, H]."""
    s = syn = mem = torch.zeros_like(current[0])
    spikes, membranes = [], []
    for t in range(len(current)):
        membranes.append(mem)
        s, syn, mem = lif_step(current[t], s, syn, mem, recurrent, alpha, beta, threshold, scale)
        spikes.append(s)
    return torch.stack(spikes), torch.stack(membranes)


def reference_forward(model: RSNN, x: Tensor) -> tuple[Tensor, Tensor]:
    """Readout record [B, T+1, C] and last-layer spikes [B, T, H_L] of ``model`` on dense input [B, T, U]."""
    batch, steps, _ = x.shape
    alpha, beta, threshold, scale = model.alpha, model.beta, model.threshold, model.surrogate_scale
    w = list(model.w)
    v = list(model.v) if model.v is not None else [None] * model.nb_layers
    s = [x.new_zeros(batch, width) for width in model.sizes[1:]]
    syn = [x.new_zeros(batch, width) for width in model.sizes[1:]]
    mem = [x.new_zeros(batch, width) for width in model.sizes[1:]]
    flt = x.new_zeros(batch, model.nb_outputs)
    out = x.new_zeros(batch, model.nb_outputs)
    current1 = torch.einsum("btu,uh->bth", x, w[0])  # I_1[t] = x[t] @ W1 for all steps at once
    out_rec, spk_rec = [out], []
    for t in range(steps):
        for k in range(model.nb_layers):
            # layer k+1 is driven by layer k's spikes of the same step
            current = current1[:, t] if k == 0 else s[k - 1] @ w[k]
            s[k], syn[k], mem[k] = lif_step(current, s[k], syn[k], mem[k], v[k], alpha, beta, threshold, scale)
        a = s[-1] @ model.w_out
        # the readout: the same two filters without spiking, out[t+1] from the previous flt
        flt, out = alpha * flt + a, beta * out + flt
        out_rec.append(out)
        spk_rec.append(s[-1])
    return torch.stack(out_rec, dim=1), torch.stack(spk_rec, dim=1)


def reference_loss(model: RSNN, x: Tensor, y: Tensor) -> Tensor:
    """NLL of the log-softmax of the class scores (maximum of the readout over time), as the paper."""
    out, _ = reference_forward(model, x)
    scores = out.max(dim=1).values
    return F.nll_loss(F.log_softmax(scores, dim=1), y)
