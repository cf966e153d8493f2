"""Activity and cost metrics of a spiking network: firing rates, silent neurons, sparsity, synaptic operations
(NeuroBench's definition) and what replay compression does to the activity.

Typical use on a test set::

    counts = count_dataset(model, data.spikes, test_idx, batch_size=256)
    metrics = {**firing_metrics(counts, step_seconds=1.4 / 100), **synops_metrics(model, counts, train_depth=1)}
"""

import torch

from spikecl.data import BinnedSpikes
from spikecl.measure.activity import ActivityCounts, count_activity, count_dataset, firing_metrics
from spikecl.measure.replay import compare_replay
from spikecl.measure.synops import ProductOps, product_ops, synops_metrics
from spikecl.models import RSNN


def measure(model: RSNN, spikes: BinnedSpikes, indices, batch_size: int = 256,
            device: torch.device | str | None = None, step_seconds: float | None = None,
            train_depth: int | None = None) -> dict[str, float]:
    """Firing and synaptic-operation metrics of the samples ``indices`` of a :class:`BinnedSpikes`, in one
    flat dict (``rate_l1``, ``silent_l1``, ``sparsity``, ``synops_inference``, ``synops_train_depth``, ...)."""
    counts = count_dataset(model, spikes, indices, batch_size, device)
    return {**firing_metrics(counts, step_seconds), **synops_metrics(model, counts, train_depth)}


__all__ = ["ActivityCounts", "ProductOps", "compare_replay", "count_activity", "count_dataset", "firing_metrics",
           "measure", "product_ops", "synops_metrics"]
