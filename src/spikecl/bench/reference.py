"""A straightforward re-statement of the paper's training step (seed-spec 2), for comparison only.

It follows the original ``run_snn``: dense input, one Python loop over time steps with every layer updated
inside it, autograd through all of it. spikecl's fast model (:mod:`spikecl.models.lif`) is benchmarked and
tested against this. It takes the weights of an :class:`~spikecl.models.lif.RSNN` so both use identical
parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spikecl.models.lif import RSNN


class SuperSpike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid derivative 1 / (scale * |x| + 1)^2 backward."""

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


def reference_forward(model: RSNN, x: Tensor) -> tuple[Tensor, Tensor]:
    """Readout record [B, T+1, C] and last-layer spikes [B, T, H_L] of ``model`` on dense input [B, T, U]."""
    batch, steps, _ = x.shape
    w, v = list(model.w), list(model.v) if model.v is not None else None
    alpha, beta, thr, scale = model.alpha, model.beta, model.threshold, model.surrogate_scale
    widths = model.sizes[1:]
    like = {"dtype": x.dtype, "device": x.device}
    syn = [torch.zeros(batch, h, **like) for h in widths]
    mem = [torch.zeros(batch, h, **like) for h in widths]
    prev = [torch.zeros(batch, h, **like) for h in widths]
    current1 = torch.einsum("btu,uh->bth", x, w[0])
    flt = torch.zeros(batch, model.nb_outputs, **like)
    out = torch.zeros(batch, model.nb_outputs, **like)
    out_rec, spk_rec = [out], []
    for t in range(steps):
        below = None
        for k in range(len(widths)):
            h = (current1[:, t] if k == 0 else below @ w[k])
            if v is not None:
                h = h + prev[k] @ v[k]
            s = SuperSpike.apply(mem[k] - thr, scale)
            rst = s.detach()
            new_syn = alpha * syn[k] + h
            new_mem = (beta * mem[k] + syn[k]) * (1.0 - rst)
            syn[k], mem[k], prev[k] = new_syn, new_mem, s
            below = s
        spk_rec.append(below)
        a = below @ model.w_out
        new_flt = alpha * flt + a
        out = beta * out + flt
        flt = new_flt
        out_rec.append(out)
    return torch.stack(out_rec, dim=1), torch.stack(spk_rec, dim=1)


def reference_loss(model: RSNN, x: Tensor, y: Tensor) -> Tensor:
    """Log-softmax + NLL of the max-over-time scores, as the paper."""
    out, _ = reference_forward(model, x)
    scores = out.max(dim=1).values
    return torch.nn.functional.nll_loss(torch.log_softmax(scores, dim=1), y)
