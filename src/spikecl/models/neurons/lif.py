"""The paper's LIF neuron (seed-spec 2.2): a synaptic current and a membrane, reset to zero on a spike.

Per time step t, from the input h[t] = I[t] + s[t-1] @ V (all states start at zero):

    s[t]     = H(mem[t] - threshold)                    the spike is read from the membrane *before* this step's update
    syn[t+1] = alpha * syn[t] + h[t]
    mem[t+1] = (beta * mem[t] + syn[t]) * (1 - s[t])    the membrane sees the *previous* synaptic current;
                                                         the reset to zero carries no gradient

with alpha = exp(-dt / tau_syn), beta = exp(-dt / tau_mem), one value for every neuron, and H the Heaviside
step with the SuperSpike surrogate gradient 1 / (scale * |mem - threshold| + 1)^2. An input at step t
reaches a spike at t + 2 at the earliest. :meth:`LIF.step` writes this out; it is the oracle of the tests.

The fast layer (:meth:`LIF.run`) runs the same operations in the same order over all steps without autograd
(:func:`lif_spikes`), with a hand-written backward pass (:class:`LIFRecurrence`) instead of an autograd graph
of thousands of small operations. Every step writes into preallocated storage; on a CPU a wide layer sums its
recurrent input over the previous step's spikes only (:class:`~spikecl.models.neurons.base.StepInputs`).
Only the sums inside s[t-1] @ V may be added in another order than in :meth:`LIF.step`, so spikes agree
exactly unless a membrane lands within rounding of the threshold. The loops run on one CPU thread
(:func:`~spikecl.models.sparse.one_thread`): their operations are far too small to split, and the result
does not depend on the thread count.

Short-time replay (one step standing for r): alpha^r and beta^r, the decay of r steps in one, and the
threshold times ``threshold_scale`` (:meth:`LIF.time_scaled`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from spikecl.models.neurons.base import Neuron, State, StepInputs, SuperSpike, recurrent_gradient, spike_events
from spikecl.models.sparse import Events, one_thread
from spikecl.utils import checks


class LIF(Neuron):
    """The paper's LIF neurons for one layer (see the module docstring). Time constants in seconds of ``dt``
    steps (the paper: dt 1 ms, tau_syn 5 ms, tau_mem 10 ms, although a bin of SHD is 14 ms: what matters is
    the per-step decay)."""

    state_names = ("syn", "mem")

    def __init__(self, width: int, *, dt: float, tau_syn: float, tau_mem: float, threshold: float,
                 surrogate_scale: float) -> None:
        super().__init__(width)
        for key, value in (("dt", dt), ("tau_syn", tau_syn), ("tau_mem", tau_mem), ("threshold", threshold),
                           ("surrogate_scale", surrogate_scale)):
            checks.number(key, value)
        self.alpha = math.exp(-dt / tau_syn)
        self.beta = math.exp(-dt / tau_mem)
        self.threshold = float(threshold)
        self.surrogate_scale = float(surrogate_scale)

    def extra_repr(self) -> str:
        return f"width={self.width}, alpha={self.alpha:.6g}, beta={self.beta:.6g}, threshold={self.threshold:g}"

    def step(self, h: Tensor, state: State) -> tuple[Tensor, State]:
        syn, mem = state
        s = SuperSpike.apply(mem - self.threshold, self.surrogate_scale)  # s[t] = H(mem[t] - threshold)
        new_syn = self.alpha * syn + h                                   # syn[t+1]
        new_mem = (self.beta * mem + syn) * (1.0 - s.detach())          # mem[t+1], from the old syn[t]
        return s, (new_syn, new_mem)

    def run(self, current: Tensor, recurrent: Tensor | None, product_width: int) -> tuple[Tensor, Events | None]:
        current = current.contiguous()
        if self.needs_grad(current, recurrent):
            return LIFRecurrence.apply(current, recurrent, self.alpha, self.beta, self.threshold,
                                       self.surrogate_scale, product_width)
        # inference or a frozen layer: no membrane trace to keep
        run = lif_spikes(current, recurrent, self.alpha, self.beta, self.threshold)
        return run.spikes, spike_events(run.spikes, run.nonzeros, product_width)

    @contextmanager
    def time_scaled(self, r: float, threshold_scale: float = 1.0) -> Iterator[LIF]:
        saved = self.alpha, self.beta, self.threshold
        self.alpha, self.beta = self.alpha ** r, self.beta ** r
        self.threshold = self.threshold * float(threshold_scale)
        try:
            yield self
        finally:
            self.alpha, self.beta, self.threshold = saved


class LIFRun(NamedTuple):
    """One LIF layer over all steps: spikes [T, B, H], membranes before each update (if kept), and each step's
    spike positions (flat indices into the [B, H] step, NumPy) where the recurrence was event-driven."""

    spikes: Tensor
    membranes: Tensor | None
    nonzeros: list[np.ndarray] | None


def lif_spikes(current: Tensor, recurrent: Tensor | None, alpha: float, beta: float, threshold: float,
               keep_membrane: bool = False) -> LIFRun:
    """Run one LIF layer over all steps of a time-major current [T, B, H]: computes exactly :meth:`LIF.step`
    step after step (spikes, and with ``keep_membrane`` the membranes they were read from), without autograd;
    only the sums inside s[t-1] @ V may be added in another order.

    The membrane trace doubles as the state, so nothing is copied. The arithmetic is the paper's, in its order:
    (beta * mem + syn) and (alpha * syn + h) are rounded as there, h = (s @ V) + I, and the reset
    ``m - m * s`` is exact for s in {0, 1}.
    """
    steps, batch, width = current.shape
    spikes = current.new_empty(steps, batch, width)
    mems = current.new_empty(steps if keep_membrane else 2, batch, width)
    mems[0].zero_()
    syn = current.new_zeros(batch, width)
    # Per-step views made at once, and the constants as 0-dim tensors: a Python number would be wrapped into
    # a new tensor by every call; the values (rounded to the tensors' dtype) are the same.
    spk, state = spikes.unbind(0), mems.unbind(0)
    a, b, thr = (torch.tensor(c, dtype=current.dtype) for c in (alpha, beta, threshold))
    inputs = StepInputs(current, recurrent, spikes)
    states = state if keep_membrane else [state[t % 2] for t in range(steps)]
    gt, mul = torch.gt, torch.mul
    with one_thread(current.device):
        for t in range(steps):
            mem, s = states[t], spk[t]
            gt(mem, thr, out=s)
            inputs.fired(t)
            if t + 1 == steps:  # the last update would only feed states that are never read
                break
            nxt = states[t + 1]
            # mem[t+1] = (beta * mem[t] + syn[t]) with the reset to zero where the neuron fired; syn[t] is
            # advanced only below
            mul(mem, b, out=nxt).add_(syn).addcmul_(nxt, s, value=-1.0)
            syn.mul_(a).add_(inputs(t))
    return LIFRun(spikes, mems if keep_membrane else None, inputs.nonzeros)


class LIFRecurrence(torch.autograd.Function):
    """Spikes of one LIF layer over all steps from its input current, with backpropagation through time:
    :func:`lif_spikes` forward, and backward the gradients autograd computes through :meth:`LIF.step`, by a
    hand-written loop.

    Tensors are time-major: ``current`` is [T, B, H]. ``recurrent`` is V ([H, H]) or None. Also returns the
    spikes' :class:`~spikecl.models.sparse.Events` (None where dense products are the better choice), used
    for the gradient of V and by the products of total width ``product_width`` that consume the spikes.
    """

    @staticmethod
    def forward(ctx, current: Tensor, recurrent: Tensor | None, alpha: float, beta: float,
                threshold: float, scale: float, product_width: int) -> tuple[Tensor, Events | None]:
        run = lif_spikes(current, recurrent, alpha, beta, threshold, keep_membrane=True)
        spikes, mems = run.spikes, run.membranes
        own = spikes.shape[-1] if ctx.needs_input_grad[1] else 0  # the gradient of V is a product with them
        events = spike_events(spikes, run.nonzeros, product_width + own)
        ctx.save_for_backward(spikes, mems, recurrent)
        ctx.constants = (alpha, beta, threshold, scale)
        ctx.events = events
        return spikes, events

    @staticmethod
    def backward(ctx, grad_spikes: Tensor, _grad_events: None):
        spikes, mems, recurrent = ctx.saved_tensors
        alpha, beta, threshold, scale = ctx.constants
        steps, batch, width = spikes.shape
        grad_spikes = grad_spikes.contiguous()
        # SuperSpike: d spike / d mem = 1 / den, den = (scale * |mem - threshold| + 1)^2, divided as the reference
        den = mems.sub(threshold).abs_().mul_(scale).add_(1.0).square_()
        # grad_current[t] = dL/dh[t] = dL/dsyn[t+1]. The last step's current reaches no spike; one more zero
        # step after it lets the gradient of V pair s[t] with grad_current[t+1] for every t.
        padded = grad_spikes.new_empty(steps + 1, batch, width)
        padded[steps - 1:].zero_()
        grad_current = padded[:steps]
        grad_mem = grad_spikes.new_zeros(batch, width)   # dL/dmem[t+1]
        carried = grad_spikes.new_empty(batch, width)    # dL/dmem[t+1] through the (non-reset) update
        grad_s = grad_spikes.new_empty(batch, width)
        vt = recurrent.t() if recurrent is not None else None
        g_out, g_cur, spk, dens = grad_spikes.unbind(0), padded.unbind(0), spikes.unbind(0), den.unbind(0)
        addmm, addcmul, add, div = torch.addmm, torch.addcmul, torch.add, torch.div
        # t = 0 is left out: mem[0] and syn[0] are constants, so nothing computed there has a gradient to pass
        with one_thread(grad_spikes.device):
            for t in range(steps - 1, 0, -1):
                if vt is not None and t + 1 < steps:         # s[t] also feeds h[t+1] through V
                    gs = addmm(g_out[t], g_cur[t + 1], vt, out=grad_s)
                else:
                    gs = g_out[t]
                addcmul(grad_mem, grad_mem, spk[t], value=-1.0, out=carried)  # no gradient through a reset
                # syn[t+1] = alpha * syn[t] + h[t], mem[t+1] = (beta * mem[t] + syn[t]) * (1 - s[t])
                add(carried, g_cur[t], alpha=alpha, out=g_cur[t - 1])
                div(gs, dens[t], out=grad_mem).add_(carried, alpha=beta)
        grad_recurrent = None
        if recurrent is not None and ctx.needs_input_grad[1]:
            grad_recurrent = recurrent_gradient(spikes, padded[1:].view(-1, width), ctx.events)
        return grad_current, grad_recurrent, None, None, None, None, None
