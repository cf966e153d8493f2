"""Synaptic operations per sample of an :class:`~spikecl.models.RSNN`, as NeuroBench counts them.

NeuroBench's *effective* synaptic operations of a product ``y = a @ W`` are the pairs (nonzero input entry,
nonzero weight on its row) summed over time steps: every input event costs its fan-out. The product counts
as accumulates (**ACs**) when every input value is 0 or ±1 (spikes: the weight is added, no multiply) and as
multiply-accumulates (**MACs**) otherwise (a float current, or binned input counts above 1). *Dense*
operations count every entry, zero or not (hardware without sparsity). Bias and neuron-state updates are
not synaptic operations (the network has no biases; the neurons' and readout's state updates are neuron
operations, counted apart below).

Products of the network, per sample over its ``T`` steps (equations in :mod:`spikecl.models.rsnn`; the
weights come from :meth:`RSNN.synapses`):

``ff_l1``     the input into layer 1, ``x[t] @ W1`` for t = 0..T-1 (ACs for 0/1 input, MACs for counts);
``rec_l{k}``  the recurrence of layer k, ``s_k[t-1] @ V_k``: spikes of steps 0..T-2 (those of the last
              step would feed step T, which is not simulated);
``ff_l{k}``   layer k-1's spikes into layer k, k >= 2, all steps;
``readout``   the last layer's spikes into the readout, ``s_L[t] @ W_out``, all steps.

**Inference** (``synops_inference``) is the whole network from raw input: every product. **One training
step at latent depth d** runs the network from the activity stored at d: the products above d
(``ff_l{k}`` for k >= max(2, d+1), ``rec_l{k}`` for k >= d+1, ``readout``); ``synops_train_depth`` is
their effective count in the forward pass, the figure NeuroBench would give (it counts inference only).
The backward pass is estimated separately, not included there: every product above d gets a weight
gradient ``a^T @ g`` (one accumulate per input event and output, ``synops_train_backward_acs`` for
spike inputs, MACs otherwise) and, where its input has a gradient (every product but the one reading the
stored entry activity), an input gradient ``g @ W^T``, which is dense because gradients are
(``synops_train_backward_macs``, T x fan-in x fan-out per product, T-1 for recurrences).
``synops_train_step`` adds forward and backward. All figures are per sample.

**Neuron operations** (NeuroBench reports them apart from synaptic ones): every neuron updates each of its
state variables every step, spikes or not (:meth:`RSNN.state_updates`: LIF's syn and mem, adLIF's mem and
adaptation, the readout's two filters per class). ``neuron_updates_l{k}`` and ``neuron_updates_readout``
are T x those per sample, ``neuron_updates_inference`` their sum, ``neuron_updates_train_depth`` the
layers above the depth and the readout; none of them is in a ``synops_*`` figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spikecl.measure.activity import ActivityCounts
from spikecl.models import RSNN


@dataclass(frozen=True)
class ProductOps:
    """Operations of one product per sample: ``effective`` (NeuroBench), ``dense``, and for training the
    weight-gradient accumulates ``weight_grad`` and the dense input-gradient MACs ``input_grad``."""

    name: str
    layer: int          # the hidden layer the product feeds (L + 1 for the readout)
    accumulate: bool    # ACs (spike input) rather than MACs
    effective: float
    dense: float
    weight_grad: float
    input_grad: float


def _fan_out(w: Tensor) -> Tensor:
    """Nonzero weights on each input's row of ``w`` [inputs, outputs] (float64)."""
    return (w.detach() != 0).sum(1, dtype=torch.float64).cpu()


def _product(name: str, layer: int, w: Tensor, events: Tensor, binary: bool, steps: int, samples: int) -> ProductOps:
    """``events`` [inputs]: nonzero input entries per input unit, summed over samples and the used steps."""
    events = events.cpu()
    fan_in, fan_out = w.shape
    return ProductOps(name, layer, binary, float(events @ _fan_out(w)) / samples, float(steps * fan_in * fan_out),
                      float(events.sum()) * fan_out / samples, float(steps * fan_in * fan_out))


def product_ops(model: RSNN, counts: ActivityCounts) -> list[ProductOps]:
    """Every product that ran for ``counts`` (see the module docstring), in network order."""
    steps, n, top = counts.steps, counts.samples, model.nb_layers
    weights = model.synapses()
    ops: list[ProductOps] = []
    d = counts.depth
    entry = "ff_l1" if d is None else f"ff_l{d + 1}" if 1 <= d < top else "readout" if d == top >= 1 else None
    if entry is not None:
        layer = top + 1 if entry == "readout" else (1 if d is None else d + 1)
        ops.append(_product(entry, layer, weights[entry], counts.entry_nonzero, counts.entry_binary, steps, n))
    for k, spikes, last in zip(counts.layers, counts.spikes, counts.last_step):
        if f"rec_l{k}" in weights:
            ops.append(_product(f"rec_l{k}", k, weights[f"rec_l{k}"], spikes - last, True, steps - 1, n))
        name = f"ff_l{k + 1}" if k < top else "readout"
        ops.append(_product(name, k + 1, weights[name], spikes, True, steps, n))
    return ops


def _runs_from(op: ProductOps, depth: int) -> bool:
    """Whether a training step at ``depth`` runs (and trains) this product."""
    if op.name.startswith("rec_l"):
        return op.layer >= depth + 1
    return op.layer >= max(2, depth + 1)


def _needs_input_grad(op: ProductOps, depth: int) -> bool:
    """Whether the product's input has a gradient at ``depth``: not the product reading the stored entry."""
    if op.name.startswith("rec_l"):
        return True
    return op.layer - 1 >= depth + 1


def synops_metrics(model: RSNN, counts: ActivityCounts, train_depth: int | None = None) -> dict[str, float]:
    """Synaptic operations per sample from activity ``counts`` (keys in the module docstring).

    Counts from raw input (``counts.depth`` None) give the inference figures and per-product counts
    (``synops_ff_l1``, ``synops_rec_l1``, ..., ``synops_readout``), and with ``train_depth`` the training
    step at that depth on the same samples. Counts from stored activity at depth d (e.g. decompressed
    replay) give the training step at d only.
    """
    ops = product_ops(model, counts)
    out: dict[str, float] = {}
    if counts.depth is None:
        out["synops_inference"] = sum(op.effective for op in ops)
        out["synops_inference_acs"] = sum(op.effective for op in ops if op.accumulate)
        out["synops_inference_macs"] = sum(op.effective for op in ops if not op.accumulate)
        out["synops_inference_dense"] = sum(op.dense for op in ops)
        out.update({f"synops_{op.name}": op.effective for op in ops})
        updates = {k: v * counts.steps for k, v in model.state_updates().items()}
        out.update({f"neuron_updates_{k}": float(v) for k, v in updates.items()})
        out["neuron_updates_inference"] = float(sum(updates.values()))
    else:
        if train_depth not in (None, counts.depth):
            raise ValueError(f"activity stored at depth {counts.depth} gives the training step at that depth, "
                             f"not at {train_depth}")
        train_depth = counts.depth
    if train_depth is not None:
        if not 0 <= train_depth <= model.nb_layers:
            raise ValueError(f"latent depth {train_depth} is outside 0..{model.nb_layers}")
        trained = [op for op in ops if _runs_from(op, train_depth)]
        forward = sum(op.effective for op in trained)
        acs = sum(op.weight_grad for op in trained if op.accumulate)
        macs = sum(op.weight_grad for op in trained if not op.accumulate)
        macs += sum(op.input_grad for op in trained if _needs_input_grad(op, train_depth))
        out.update({"train_depth": float(train_depth), "synops_train_depth": forward,
                    "synops_train_depth_dense": sum(op.dense for op in trained),
                    "synops_train_backward_acs": acs, "synops_train_backward_macs": macs,
                    "synops_train_step": forward + acs + macs,
                    "neuron_updates_train_depth": float(counts.steps * sum(
                        v for k, v in model.state_updates().items() if k == "readout" or int(k[1:]) > train_depth))})
    return out
