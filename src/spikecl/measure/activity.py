"""Spiking activity of an :class:`~spikecl.models.RSNN`: firing rates, silent neurons, sparsity.

The network is run once per batch with every hidden layer's spikes kept (:meth:`RSNN.hidden_spikes`: the
model's own spikes, whatever its neuron type), and reduced at once to per-neuron sums in an
:class:`ActivityCounts`. Counts of several batches add up, so a whole test set is measured batch by batch
without keeping any spike tensor. Everything runs under ``torch.inference_mode``.

Figures (:func:`firing_metrics`), per hidden layer k:

``rate_l{k}``
    spikes per neuron per time step, averaged over neurons, steps and samples;
``rate_hz_l{k}``
    the same per second of input, ``rate_l{k} / step_seconds`` (one step is ``max_time / nb_steps`` of
    the recording: 14 ms for SHD binned to 100 steps over 1.4 s), when ``step_seconds`` is given;
``silent_l{k}``
    fraction of neurons that never fire on any of the measured samples (dead neurons);
``silent_sample_l{k}``
    fraction of neurons silent within one sample, averaged over samples;
``sparsity_l{k}``
    activation sparsity as NeuroBench defines it: the fraction of zero entries of the layer's [B, T, H]
    activity (1 - rate for 0/1 spikes); ``sparsity`` pools every hidden layer.

Synaptic operations from the same counts are in :mod:`spikecl.measure.synops`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from spikecl.data import BinnedSpikes
from spikecl.models import RSNN


@dataclass
class ActivityCounts:
    """Per-neuron sums of a network's activity over a set of samples; ``a + b`` pools two sets.

    ``depth`` says where the activity entered: None for raw input (the entry is the input, the whole
    network ran), d for stored activity at latent depth d (the entry is layer d's spikes, d >= 1, or the
    current into layer 1, d = 0; only the layers above d ran). ``layers`` are the 1-based indices of the
    hidden layers that ran; the per-layer lists follow them.
    """

    depth: int | None
    samples: int
    steps: int
    entry_nonzero: Tensor                 # [U] nonzero entries per entry unit (float64, summed over samples, steps)
    entry_sum: Tensor                     # [U] sum of the entry's values (spike counts)
    entry_binary: bool                    # every entry value is 0, 1 or -1 (NeuroBench: accumulates, not MACs)
    layers: list[int]
    spikes: list[Tensor] = field(default_factory=list)        # [H_k] spike totals per neuron
    last_step: list[Tensor] = field(default_factory=list)     # [H_k] spikes of the final step (feed no recurrence)
    silent_in_sample: list[float] = field(default_factory=list)  # sum over samples of the silent fraction

    def __add__(self, other: ActivityCounts) -> ActivityCounts:
        if (self.depth, self.steps, self.layers) != (other.depth, other.steps, other.layers):
            raise ValueError("cannot pool activity counts of different depths, step counts or layers")
        return ActivityCounts(
            self.depth, self.samples + other.samples, self.steps, self.entry_nonzero + other.entry_nonzero,
            self.entry_sum + other.entry_sum, self.entry_binary and other.entry_binary, self.layers,
            [a + b for a, b in zip(self.spikes, other.spikes)],
            [a + b for a, b in zip(self.last_step, other.last_step)],
            [a + b for a, b in zip(self.silent_in_sample, other.silent_in_sample)])


def _entry_counts(x: Tensor) -> tuple[Tensor, Tensor, bool]:
    """Nonzero entries and value sums per unit of a dense [B, T, U] or sparse [B*T, U] entry, and whether
    every value is 0/±1 (spikes)."""
    if x.layout == torch.strided:
        flat = x.detach().reshape(-1, x.shape[-1])
        values = flat
        nonzero = (flat != 0).sum(0, dtype=torch.float64)
        sums = flat.sum(0, dtype=torch.float64)
    else:
        csr = x.to_sparse_csr() if x.layout != torch.sparse_csr else x
        values, cols = csr.values(), csr.col_indices()
        units = csr.shape[-1]
        nonzero = torch.zeros(units, dtype=torch.float64, device=x.device)
        nonzero.index_add_(0, cols, (values != 0).to(torch.float64))
        sums = torch.zeros(units, dtype=torch.float64, device=x.device)
        sums.index_add_(0, cols, values.to(torch.float64))
    binary = not bool(((values != 0) & (values != 1) & (values != -1)).any())
    return nonzero, sums, binary


@torch.inference_mode()
def count_activity(model: RSNN, x: Tensor, nb_steps: int | None = None, depth: int | None = None) -> ActivityCounts:
    """Activity counts of one batch.

    ``depth`` None: ``x`` is raw input, dense [B, T, U] or sparse CSR [B*T, U] (``BinnedSpikes.csr``, then
    ``nb_steps`` is needed), and every layer runs. ``depth`` d: ``x`` [B, T, H_d] is activity at latent
    depth d (float, or decoded replay), and only the layers above d run, as in a training step there.
    """
    model.eval()
    if depth is not None and not 0 <= depth <= model.nb_layers:
        raise ValueError(f"latent depth {depth} is outside 0..{model.nb_layers}")
    entry = _entry_counts(x)
    spikes = model.hidden_spikes(x, depth, nb_steps)  # [B, T, H_k] of every layer that ran
    if depth is None:
        layers = list(range(1, model.nb_layers + 1))
        steps = spikes[0].shape[1]
    else:
        layers = list(range(depth + 1, model.nb_layers + 1))
        steps = x.shape[1]
    batch = len(x) if x.layout == torch.strided else x.shape[0] // steps
    return ActivityCounts(
        depth=depth, samples=batch, steps=steps, entry_nonzero=entry[0], entry_sum=entry[1], entry_binary=entry[2],
        layers=layers,
        spikes=[s.sum((0, 1), dtype=torch.float64) for s in spikes],
        last_step=[s[:, -1].sum(0, dtype=torch.float64) for s in spikes],
        # a neuron is silent in a sample when it never fires over the sample's steps
        silent_in_sample=[float((s.amax(1) == 0).to(torch.float64).mean(1).sum()) for s in spikes])


def count_dataset(model: RSNN, spikes: BinnedSpikes, indices: Sequence[int] | np.ndarray, batch_size: int = 256,
                  device: torch.device | str | None = None) -> ActivityCounts:
    """Activity counts of the samples ``indices`` of a binned data set, run from raw input batch by batch."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        raise ValueError("no samples to measure")
    device = torch.device(device) if device is not None else model.device
    total: ActivityCounts | None = None
    for start in range(0, len(indices), batch_size):
        part = count_activity(model, spikes.csr(indices[start:start + batch_size], device), spikes.nb_steps)
        total = part if total is None else total + part
    return total


def firing_metrics(counts: ActivityCounts, step_seconds: float | None = None) -> dict[str, float]:
    """Firing rate, silent neurons and sparsity per hidden layer (see the module docstring for the keys),
    plus ``rate_input`` (spikes per entry unit per step) and ``samples``."""
    cells = counts.samples * counts.steps
    out: dict[str, float] = {"samples": float(counts.samples),
                             "rate_input": float(counts.entry_sum.sum()) / (cells * len(counts.entry_sum))}
    total_spikes = total_cells = 0.0
    for k, per_neuron, silent in zip(counts.layers, counts.spikes, counts.silent_in_sample):
        width = len(per_neuron)
        rate = float(per_neuron.sum()) / (cells * width)
        out[f"rate_l{k}"] = rate
        if step_seconds is not None:
            out[f"rate_hz_l{k}"] = rate / step_seconds
        out[f"silent_l{k}"] = float((per_neuron == 0).to(torch.float64).mean())
        out[f"silent_sample_l{k}"] = silent / counts.samples
        out[f"sparsity_l{k}"] = 1.0 - rate  # hidden spikes are 0/1: zero entries = 1 - rate
        total_spikes += float(per_neuron.sum())
        total_cells += cells * width
    if total_cells:
        out["sparsity"] = 1.0 - total_spikes / total_cells
    return out

