"""The paper's spike-count regularisers (the ``loss`` config group), added by the loop to every training loss."""

from __future__ import annotations

from torch import Tensor

from spikecl.utils import checks


class SpikeRegulariser:
    """L1 on the total spike count and L2 on per-neuron counts of the last hidden layer (seed-spec 2.6); both
    weights are 0 in every run of the paper."""

    def __init__(self, reg_l1: float = 0.0, reg_l2: float = 0.0) -> None:
        self.reg_l1 = checks.number("reg_l1", reg_l1, positive=False)
        self.reg_l2 = checks.number("reg_l2", reg_l2, positive=False)

    def __call__(self, spikes: Tensor) -> Tensor | float:
        """The regulariser of last-layer spikes [B, T, H] (0.0 when both weights are 0)."""
        if self.reg_l1 == 0 and self.reg_l2 == 0:
            return 0.0
        per_neuron = spikes.sum(dim=(0, 1))
        return self.reg_l1 * per_neuron.sum() + self.reg_l2 * per_neuron.square().mean()
