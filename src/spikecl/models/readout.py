"""The network's readout: a non-spiking leaky integrator, and the class score (its maximum over time).

From the readout current a[t] = s_L[t] @ W_out (seed-spec 2.3), with flt and out starting at zero:

    flt[t+1] = alpha * flt[t] + a[t]
    out[t+1] = beta * out[t] + flt[t]           the previous flt

alpha = exp(-dt / tau_syn), beta = exp(-dt / tau_mem). The record is out[0..T], T + 1 entries including the
initial zero, and a class score is the maximum of out over time. Both filters are linear, so the record
is one product with a [T+1, T] kernel (:func:`readout_kernel`), built once per step count and constants.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from spikecl.models.sparse import matmul
from spikecl.utils import checks


def readout_kernel(steps: int, alpha: float, beta: float, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> Tensor:
    """Matrix K [steps+1, steps] with out = K @ a for the readout's two leaky filters.

    Column tau is the response of flt[t+1] = alpha * flt[t] + a[t], out[t+1] = beta * out[t] + flt[t]
    to a unit impulse a[tau]; it is computed by running that recursion (in float64) on all impulses at once.
    """
    impulses = torch.eye(steps, dtype=torch.float64)
    flt = torch.zeros(steps, dtype=torch.float64)
    out = torch.zeros(steps + 1, steps, dtype=torch.float64)
    for t in range(steps):
        out[t + 1] = beta * out[t] + flt
        flt = alpha * flt + impulses[t]
    return out.to(dtype=dtype, device=device)


class LeakyReadout(nn.Module):
    """The two leaky filters of the readout (see the module docstring); no parameters of its own (the
    weights W_out are the network's). Time constants in seconds of ``dt`` steps, as the LIF neuron's."""

    state_updates = 2  # flt and out, per class and step

    def __init__(self, *, dt: float, tau_syn: float, tau_mem: float) -> None:
        super().__init__()
        for key, value in (("dt", dt), ("tau_syn", tau_syn), ("tau_mem", tau_mem)):
            checks.number(key, value)
        self.alpha = math.exp(-dt / tau_syn)
        self.beta = math.exp(-dt / tau_mem)
        self._kernels: dict[tuple, Tensor] = {}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:.6g}, beta={self.beta:.6g}"

    def forward(self, a: Tensor) -> Tensor:
        """Readout record [T+1, B, C] from its time-major input a [T, B, C]; out[0] = 0."""
        steps, batch, classes = a.shape
        key = (steps, self.alpha, self.beta, a.dtype, a.device)
        if key not in self._kernels:
            with torch.inference_mode(False):  # built once, also usable by later training steps
                self._kernels[key] = readout_kernel(steps, self.alpha, self.beta, a.dtype, a.device)
        return matmul(self._kernels[key], a.reshape(steps, batch * classes)).view(steps + 1, batch, classes)

    def step(self, a: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One step of the filters in plain torch (the reference): out[t+1] and the new (flt, out)."""
        flt, out = state
        flt, out = self.alpha * flt + a, self.beta * out + flt  # out[t+1] from the previous flt
        return out, (flt, out)

    @contextmanager
    def time_scaled(self, r: float) -> Iterator[LeakyReadout]:
        """alpha^r, beta^r inside the block: one step decays as much as r steps. A backward pass after the
        block is still right: the kernel used is kept by autograd."""
        saved = self.alpha, self.beta
        self.alpha, self.beta = self.alpha ** r, self.beta ** r
        try:
            yield self
        finally:
            self.alpha, self.beta = saved


def class_scores(out: Tensor) -> Tensor:
    """Class score = maximum of the readout record over time, [B, C]."""
    return out.max(dim=1).values
