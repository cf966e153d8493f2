"""Adaptive LIF neurons (adLIF) with per-neuron learnable constants, discretised by symplectic Euler as
SE-adLIF (Baronig et al. 2024, "Advancing spatio-temporal processing in spiking neural networks through
adaptation"); the constants' ranges as sparch's adLIF (Bittar and Garner 2022).

Every neuron has a membrane ``mem`` (u in those papers) and an adaptation variable ``adapt`` (w there; w is a
weight here). Per time step t, from the input h[t] = I[t] + s[t-1] @ V (all states start at zero):

    mem'[t]  = alpha * mem[t-1] + (1 - alpha) * (h[t] - adapt[t-1])   integrate, against the adaptation
    s[t]     = H(mem'[t] - threshold)                                 the spike of this step's membrane
    mem[t]   = mem'[t] * (1 - s[t])                                   reset to zero, no gradient through it
    adapt[t] = beta * adapt[t-1] + (1 - beta) * (a * mem[t] + b * s[t])

The adaptation is updated from the *new* membrane and spike (symplectic Euler: the membrane first, then the
adaptation from it), which keeps the discrete oscillation of the coupled pair stable where forward Euler
(sparch) lets it grow. ``a`` couples the adaptation to the sub-threshold membrane (a > 0: resonance), ``b``
raises it by (1 - beta) * b per spike (spike-frequency adaptation). alpha = exp(-1 / tau_mem) and
beta = exp(-1 / tau_adapt) (time constants in time steps, i.e. bins), a and b are parameters of every
neuron, trained with the weights; each is drawn uniformly in its range and clamped to it in every step
(the clamp passes no gradient outside the range). H is the Heaviside step with the SuperSpike surrogate
gradient 1 / (scale * |mem' - threshold| + 1)^2. The factor (1 - alpha) makes a constant input h settle at
mem = h - adapt whatever tau_mem is. An input at step t can make a spike at step t (the paper's LIF: t + 2).

:meth:`AdLIF.step` writes this out (the oracle of the tests); :meth:`AdLIF.run` is the fast layer: the same
operations in the same order over all steps without autograd (:func:`adlif_spikes`; only the sums inside
s[t-1] @ V may be added in another order) and a hand-written backward pass (:class:`AdLIFRecurrence`).

Short-time replay (one step standing for r): alpha^r and beta^r, with the gains (1 - alpha^r) and
(1 - beta^r) that follow from them, so that one step on an input held constant over the r steps moves the
uncoupled membrane exactly as r steps do; a and b are kept; the threshold times ``threshold_scale``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from spikecl.errors import ConfigError
from spikecl.models.neurons.base import Neuron, State, StepInputs, SuperSpike, recurrent_gradient, spike_events
from spikecl.models.sparse import Events, one_thread
from spikecl.utils import checks


def _range(key: str, value: Sequence[float], positive: bool = False) -> tuple[float, float]:
    """A [low, high] range of a config, low <= high (both > 0 with ``positive``)."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not valid; give a range [low, high], e.g. {key}=[5,25]") from None
    if low > high or (positive and low <= 0):
        raise ConfigError(f"{key}=[{low:g}, {high:g}] is not valid; it must be a range low <= high"
                          + (" of numbers > 0" if positive else ""))
    return low, high


class AdLIF(Neuron):
    """Adaptive LIF neurons for one layer (see the module docstring).

    Args:
        width: neurons in the layer.
        tau_mem: [low, high] range of the membrane time constants, in time steps.
        tau_adapt: [low, high] range of the adaptation time constants, in time steps.
        a: [low, high] range of the sub-threshold coupling.
        b: [low, high] range of the spike-triggered jump.
        threshold: firing threshold.
        surrogate_scale: width of the surrogate gradient (larger: narrower).
    """

    state_names = ("mem", "adapt")

    def __init__(self, width: int, *, tau_mem: Sequence[float], tau_adapt: Sequence[float], a: Sequence[float],
                 b: Sequence[float], threshold: float, surrogate_scale: float) -> None:
        super().__init__(width)
        tau_mem, tau_adapt = _range("tau_mem", tau_mem, positive=True), _range("tau_adapt", tau_adapt, positive=True)
        self.alpha_range = (math.exp(-1.0 / tau_mem[0]), math.exp(-1.0 / tau_mem[1]))
        self.beta_range = (math.exp(-1.0 / tau_adapt[0]), math.exp(-1.0 / tau_adapt[1]))
        self.a_range, self.b_range = _range("a", a), _range("b", b)
        self.threshold = checks.number("threshold", threshold)
        self.surrogate_scale = checks.number("surrogate_scale", surrogate_scale)
        self.alpha = nn.Parameter(torch.empty(self.width))  # membrane decay per step, exp(-1 / tau_mem)
        self.beta = nn.Parameter(torch.empty(self.width))   # adaptation decay per step, exp(-1 / tau_adapt)
        self.a = nn.Parameter(torch.empty(self.width))
        self.b = nn.Parameter(torch.empty(self.width))
        self._power, self._threshold_scale = 1.0, 1.0       # short-time replay (time_scaled)
        self.reset_parameters()

    def extra_repr(self) -> str:
        return (f"width={self.width}, alpha in {self.alpha_range}, beta in {self.beta_range}, a in {self.a_range}, "
                f"b in {self.b_range}, threshold={self.threshold:g}")

    def reset_parameters(self) -> None:
        """Each constant uniform in its range (alpha and beta uniform as decays, as sparch)."""
        with torch.no_grad():
            for p, (low, high) in ((self.alpha, self.alpha_range), (self.beta, self.beta_range),
                                   (self.a, self.a_range), (self.b, self.b_range)):
                p.uniform_(low, high)

    def constants(self) -> tuple[Tensor, Tensor, Tensor, Tensor, float]:
        """alpha, beta, a, b [H] as the steps use them (clamped to their ranges; alpha^r, beta^r under
        :meth:`time_scaled`), and the threshold."""
        alpha, beta = self.alpha.clamp(*self.alpha_range), self.beta.clamp(*self.beta_range)
        if self._power != 1.0:
            alpha, beta = alpha ** self._power, beta ** self._power
        return alpha, beta, self.a.clamp(*self.a_range), self.b.clamp(*self.b_range), \
            self.threshold * self._threshold_scale

    def step(self, h: Tensor, state: State) -> tuple[Tensor, State]:
        mem, adapt = state
        alpha, beta, a, b, threshold = self.constants()
        mem = alpha * mem + (1 - alpha) * (h - adapt)                  # mem'[t]
        s = SuperSpike.apply(mem - threshold, self.surrogate_scale)    # s[t] = H(mem'[t] - threshold)
        mem = mem * (1.0 - s.detach())                                 # mem[t]: reset to zero
        adapt = beta * adapt + (1 - beta) * (a * mem + b * s)          # adapt[t], from the new mem and s
        return s, (mem, adapt)

    def run(self, current: Tensor, recurrent: Tensor | None, product_width: int) -> tuple[Tensor, Events | None]:
        current = current.contiguous()
        if self.needs_grad(current, recurrent):
            alpha, beta, a, b, threshold = self.constants()
            return AdLIFRecurrence.apply(current, recurrent, alpha, beta, a, b, threshold, self.surrogate_scale,
                                         product_width)
        with torch.no_grad():
            alpha, beta, a, b, threshold = self.constants()
            run = adlif_spikes(current, recurrent, alpha, beta, a, b, threshold)
        return run.spikes, spike_events(run.spikes, run.nonzeros, product_width)

    @contextmanager
    def time_scaled(self, r: float, threshold_scale: float = 1.0) -> Iterator[AdLIF]:
        saved = self._power, self._threshold_scale
        self._power, self._threshold_scale = self._power * r, self._threshold_scale * float(threshold_scale)
        try:
            yield self
        finally:
            self._power, self._threshold_scale = saved


class AdLIFRun(NamedTuple):
    """One adLIF layer over all steps: spikes [T, B, H]; with the trace kept, the membranes mem' before the
    reset, the adaptation after each step and the differences h[t] - adapt[t-1] (all [T, B, H]); each step's
    spike positions where the recurrence was event-driven."""

    spikes: Tensor
    membranes: Tensor | None
    adaptation: Tensor | None
    differences: Tensor | None
    nonzeros: list[np.ndarray] | None


def adlif_spikes(current: Tensor, recurrent: Tensor | None, alpha: Tensor, beta: Tensor, a: Tensor, b: Tensor,
                 threshold: float, keep_trace: bool = False) -> AdLIFRun:
    """Run one adLIF layer over all steps of a time-major current [T, B, H]: exactly :meth:`AdLIF.step` step
    after step with the given constants ([H] each), without autograd; only the sums inside s[t-1] @ V may
    be added in another order. Each operation is the reference's, rounded as there: (h - adapt) times
    (1 - alpha) added to alpha * mem; the reset ``m - m * s`` and ``u + s * b`` are exact for s in {0, 1}.
    """
    steps, batch, width = current.shape
    alpha, beta, a, b = (c.detach().to(current.dtype) for c in (alpha, beta, a, b))
    gain_mem, gain_adapt = 1 - alpha, 1 - beta
    spikes = current.new_empty(steps, batch, width)
    kept = steps if keep_trace else 1
    mems, diffs = current.new_empty(kept, batch, width), current.new_empty(kept, batch, width)
    adapts = current.new_empty(steps if keep_trace else 2, batch, width)
    mem = current.new_zeros(batch, width)      # mem[t-1], after the reset
    no_adapt = current.new_zeros(batch, width)  # adapt[-1]
    u = current.new_empty(batch, width)
    thr = torch.tensor(threshold, dtype=current.dtype)
    spk, mm, dd, aa = spikes.unbind(0), mems.unbind(0), diffs.unbind(0), adapts.unbind(0)
    inputs = StepInputs(current, recurrent, spikes)
    sub, mul, gt, addcmul = torch.sub, torch.mul, torch.gt, torch.addcmul
    with one_thread(current.device):
        for t in range(steps):
            i = t if keep_trace else 0
            prev = aa[(t - 1) % len(aa)] if t else no_adapt
            adapt, s, m = aa[t % len(aa)], spk[t], mm[i]
            diff = sub(inputs(t), prev, out=dd[i])                          # h[t] - adapt[t-1]
            mul(mem, alpha, out=m).add_(mul(diff, gain_mem, out=u))          # mem'[t]
            gt(m, thr, out=s)                                                # s[t]
            inputs.fired(t)
            addcmul(m, m, s, value=-1.0, out=mem)                            # mem[t] = mem'[t] * (1 - s[t])
            mul(mem, a, out=u).addcmul_(s, b).mul_(gain_adapt)               # (1 - beta) * (a mem + b s)
            mul(prev, beta, out=adapt).add_(u)                               # adapt[t]
    if not keep_trace:
        return AdLIFRun(spikes, None, None, None, inputs.nonzeros)
    return AdLIFRun(spikes, mems, adapts, diffs, inputs.nonzeros)


class AdLIFRecurrence(torch.autograd.Function):
    """Spikes of one adLIF layer over all steps, with backpropagation through time: :func:`adlif_spikes`
    forward, and backward the gradients autograd computes through :meth:`AdLIF.step` (for the current, V and
    the constants alpha, beta, a, b), by a hand-written loop.

    With g = 1 - alpha, q = 1 - beta, and adjoints dm'[t] = dL/dmem'[t], dadapt[t], dmem[t] (after the reset),
    going back in time (nothing after the last step: dadapt[T-1] = dmem[T-1] = 0):

        dadapt[t] = beta * dadapt[t+1] - g * dm'[t+1]
        dmem[t]   = alpha * dm'[t+1] + q * a * dadapt[t]
        ds[t]     = dL/ds[t] + dL/dh[t+1] @ V^T + q * b * dadapt[t]
        dm'[t]    = ds[t] / den[t] + (1 - s[t]) * dmem[t]      (den: the surrogate's denominator)
        dL/dh[t]  = g * dm'[t]

    and the constants' gradients are sums over samples and steps: dalpha = dm' (mem[t-1] - (h[t] - adapt[t-1])),
    dbeta = dadapt (adapt[t-1] - (a mem[t] + b s[t])), da = q dadapt mem[t], db = q dadapt s[t].
    """

    @staticmethod
    def forward(ctx, current: Tensor, recurrent: Tensor | None, alpha: Tensor, beta: Tensor, a: Tensor, b: Tensor,
                threshold: float, scale: float, product_width: int) -> tuple[Tensor, Events | None]:
        run = adlif_spikes(current, recurrent, alpha, beta, a, b, threshold, keep_trace=True)
        own = current.shape[-1] if ctx.needs_input_grad[1] else 0  # the gradient of V is a product with them
        events = spike_events(run.spikes, run.nonzeros, product_width + own)
        ctx.save_for_backward(run.spikes, run.membranes, run.adaptation, run.differences, recurrent,
                              alpha, beta, a, b)
        ctx.constants = (threshold, scale)
        ctx.events = events
        return run.spikes, events

    @staticmethod
    def backward(ctx, grad_spikes: Tensor, _grad_events: None):
        spikes, mems, adapts, diffs, recurrent, alpha, beta, a, b = ctx.saved_tensors
        threshold, scale = ctx.constants
        steps, batch, width = spikes.shape
        grad_spikes = grad_spikes.contiguous()
        gain_mem, gain_adapt = 1 - alpha, 1 - beta
        qa, qb = gain_adapt * a, gain_adapt * b
        den = mems.sub(threshold).abs_().mul_(scale).add_(1.0).square_()
        keep = 1.0 - spikes                                       # 1 - s[t]: the reset passes no gradient
        grad_mem_pre = torch.empty_like(mems)                     # dm'[t]
        grad_adapt = torch.empty_like(mems)                       # dadapt[t]
        # dL/dh[t] for every t, with one zero step after the last: the gradient of V pairs s[t] with dL/dh[t+1]
        padded = grad_spikes.new_empty(steps + 1, batch, width)
        padded[steps].zero_()
        grad_current = padded[:steps]
        grad_mem = grad_spikes.new_empty(batch, width)            # dmem[t]
        grad_s = grad_spikes.new_empty(batch, width)
        vt = recurrent.t() if recurrent is not None else None
        g_out, g_cur, dm_pre, d_adapt = grad_spikes.unbind(0), padded.unbind(0), grad_mem_pre.unbind(0), grad_adapt.unbind(0)
        dens, keeps = den.unbind(0), keep.unbind(0)
        mul, addmm, addcmul, div = torch.mul, torch.addmm, torch.addcmul, torch.div
        with one_thread(grad_spikes.device):
            for t in range(steps - 1, -1, -1):
                if t + 1 == steps:
                    d_adapt[t].zero_()
                    grad_mem.zero_()
                else:
                    mul(d_adapt[t + 1], beta, out=d_adapt[t]).addcmul_(dm_pre[t + 1], gain_mem, value=-1.0)
                    mul(dm_pre[t + 1], alpha, out=grad_mem).addcmul_(d_adapt[t], qa)
                if vt is not None and t + 1 < steps:          # s[t] also feeds h[t+1] through V
                    addmm(g_out[t], g_cur[t + 1], vt, out=grad_s).addcmul_(d_adapt[t], qb)
                else:
                    addcmul(g_out[t], d_adapt[t], qb, out=grad_s)
                div(grad_s, dens[t], out=dm_pre[t]).addcmul_(grad_mem, keeps[t])
                if vt is not None:
                    mul(dm_pre[t], gain_mem, out=g_cur[t])
        if vt is None:
            torch.mul(grad_mem_pre, gain_mem, out=grad_current)
        grads = [None] * 4
        if any(ctx.needs_input_grad[2:6]):
            # the states each step started from: mem[t-1] after the reset and adapt[t-1] (zero before step 0)
            mem_post = mems * keep
            mem_prev = torch.cat([mem_post.new_zeros(1, batch, width), mem_post[:-1]])
            adapt_prev = torch.cat([adapts.new_zeros(1, batch, width), adapts[:-1]])
            drive = a * mem_post + b * spikes                     # a mem[t] + b s[t]
            grads = [(grad_mem_pre * (mem_prev - diffs)).sum((0, 1)),
                     (grad_adapt * (adapt_prev - drive)).sum((0, 1)),
                     (grad_adapt * mem_post).sum((0, 1)) * gain_adapt,
                     (grad_adapt * spikes).sum((0, 1)) * gain_adapt]
        grad_recurrent = None
        if recurrent is not None and ctx.needs_input_grad[1]:
            grad_recurrent = recurrent_gradient(spikes, padded[1:].view(-1, width), ctx.events)
        return (grad_current, grad_recurrent, *[g if need else None for g, need in zip(grads, ctx.needs_input_grad[2:6])],
                None, None, None)
