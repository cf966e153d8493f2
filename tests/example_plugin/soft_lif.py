"""mypkg/soft_lif.py: LIF neurons without a synaptic filter, reset by subtraction (a neuron type of one's own)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor

from spikecl.models.neurons import Neuron, SuperSpike


class SoftResetLIF(Neuron):
    """mem[t] = beta * mem[t-1] + (1 - beta) * h[t]; s[t] = H(mem[t] - threshold); mem[t] -= threshold * s[t]."""

    state_names = ("mem",)

    def __init__(self, width: int, *, tau_mem: float, threshold: float, surrogate_scale: float = 10.0) -> None:
        super().__init__(width)
        if tau_mem <= 0 or threshold <= 0:
            raise ValueError(f"SoftResetLIF needs tau_mem > 0 and threshold > 0; got {tau_mem}, {threshold}")
        self.beta = math.exp(-1.0 / tau_mem)  # tau_mem in time steps
        self.threshold, self.surrogate_scale = float(threshold), float(surrogate_scale)

    def step(self, h: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        (mem,) = state
        mem = self.beta * mem + (1 - self.beta) * h
        s = SuperSpike.apply(mem - self.threshold, self.surrogate_scale)
        return s, (mem - self.threshold * s.detach(),)

    @contextmanager
    def time_scaled(self, r: float, threshold_scale: float = 1.0) -> Iterator[SoftResetLIF]:
        saved = self.beta, self.threshold  # one step decays as r steps did (short-time replay)
        self.beta, self.threshold = self.beta ** r, self.threshold * threshold_scale
        try:
            yield self
        finally:
            self.beta, self.threshold = saved
