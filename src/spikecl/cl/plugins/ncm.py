"""Nearest class mean, iCaRL's classifier (Rebuffi et al. 2017), next to the readout's predictions.

A sample's feature is the spike count of every neuron of the last hidden layer over the whole sample,
f = sum_t s_L[t] [H_L], divided by its L2 norm (``normalize``; a silent sample keeps the zero vector). The
mean of class c is taken over the :class:`~spikecl.cl.plugins.replay.Replay` plugin's buffer,

    mu_c = normalize( 1 / |M_c| * sum_{i in M_c} f_i ),    M_c the stored samples of class c,

the stored activity decoded and run through the layers above its depth (what replay feeds the network). A
sample is then predicted as the class of the nearest mean, argmin_c ||f - mu_c||, among the classes the
buffer holds (a class without stored samples is never predicted). The readout is not used: NCM measures
whether the hidden representation still separates the classes when the readout's bias towards the latest
class is taken out of the way.

The classifier is measured, never trained: after pretraining (at the start of the first learned task, on the
pretraining task's stored samples) and after every task (the task's train samples join the buffer first,
:meth:`Replay.store_until`; so the buffer at the end also holds the last task's samples), on every task's
test and validation parts, from raw input. ``summary.json`` gets ``ncm_accuracy_matrix`` (row i: the NCM
test accuracy on every task after task i, row 0 after pretraining, as ``accuracy_matrix``),
``ncm_val_accuracy_matrix``, and the figures that the readout has under the same names without ``ncm_``:
``ncm_acc_all`` (every task's test samples pooled, at the end), ``ncm_acc_old``, ``ncm_acc_new`` (the learned
tasks' test samples pooled), ``ncm_forgetting``, ``ncm_acc_new_mean``, ``ncm_bwt`` and ``val_ncm_acc_all``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.metrics import matrix_metrics
from spikecl.cl.minibatch import minibatches
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.replay import Replay
from spikecl.utils import checks

PARTS = ("test", "val")


def class_means(features: Tensor, labels: Tensor, normalize: bool) -> tuple[Tensor, Tensor]:
    """The classes present in ``labels`` [N] (sorted) and their mean features [K, H] (normalised with
    ``normalize``); ``features`` [N, H] as :func:`features_of` gives them."""
    classes, of = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(classes), features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, of, features)
    means = sums / torch.bincount(of, minlength=len(classes)).to(features.dtype)[:, None]
    return classes, F.normalize(means, dim=1) if normalize else means


def nearest_mean(features: Tensor, classes: Tensor, means: Tensor) -> Tensor:
    """The class [N] of the nearest mean (Euclidean distance) of every feature row [N, H]."""
    return classes[torch.cdist(features, means).argmin(dim=1)]


def pooled(accuracies: np.ndarray, sizes: np.ndarray) -> float:
    """The accuracy on the union of tasks with these per-task ``accuracies`` and sample counts ``sizes``."""
    return float(np.nansum(accuracies * sizes) / sizes.sum()) if sizes.sum() else float("nan")


def features_of(spikes: Tensor, normalize: bool) -> Tensor:
    """Spike counts [B, H] of last-hidden-layer spikes [B, T, H], L2-normalised with ``normalize``."""
    counts = spikes.float().sum(dim=1)
    return F.normalize(counts, dim=1) if normalize else counts


class NearestClassMean(Plugin):
    """Measure the nearest-class-mean classifier on the buffer after every task (see the module docstring).

    Args:
        normalize: divide every feature and every class mean by its L2 norm (iCaRL).
        batch_size: samples per forward pass when computing features.
    """

    requires = (Replay,)
    follows = (Replay,)

    def __init__(self, *, normalize: bool, batch_size: int) -> None:
        self.normalize = checks.boolean("normalize", normalize)
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.matrix: dict[str, list[list[float]]] = {part: [] for part in PARTS}

    def before_task(self, ctx: Context, task: int) -> None:
        if not self.matrix["test"]:  # the pretrained network, on the pretraining task's stored samples
            self.measure(ctx)

    def after_task(self, ctx: Context, task: int) -> None:
        ctx.plugin(Replay).store_until(ctx, task)
        self.measure(ctx)

    @torch.inference_mode()
    def measure(self, ctx: Context) -> None:
        """A row of both matrices: the NCM accuracy on every task's test and validation parts."""
        replay = ctx.plugin(Replay)
        source, model, depth = replay.source, ctx.model, replay.depth
        if not len(source):
            return
        stored = [model.from_latent(source.entry(b), depth, return_spikes=True)[1]
                  for b in minibatches(np.arange(len(source)), self.batch_size)]
        classes, means = class_means(features_of(torch.cat(stored), self.normalize), source.labels, self.normalize)
        spikes = ctx.data.spikes
        for part in PARTS:
            row = []
            for task in ctx.tasks:
                indices = getattr(task, part)
                predicted = [nearest_mean(features_of(model.latent(spikes.csr(b, device=ctx.device), model.nb_layers,
                                                                   spikes.nb_steps), self.normalize), classes, means)
                             for b in minibatches(indices, self.batch_size)]
                labels = torch.as_tensor(ctx.data.labels[indices], device=ctx.device)
                row.append(float((torch.cat(predicted) == labels).float().mean()) if len(indices) else float("nan"))
            self.matrix[part].append(row)

    def figures(self, ctx: Context) -> dict[str, Any]:
        test = np.array(self.matrix["test"])
        if not len(test):
            return {}
        sizes = {part: np.array([len(getattr(t, part)) for t in ctx.tasks]) for part in PARTS}
        derived = matrix_metrics(test)
        figures = {"ncm_accuracy_matrix": test.tolist(), "ncm_val_accuracy_matrix": self.matrix["val"],
                   "ncm_acc_all": pooled(test[-1], sizes["test"]), "ncm_acc_old": float(test[-1, 0]),
                   "ncm_acc_new": pooled(test[-1, 1:], sizes["test"][1:]),
                   "ncm_forgetting": float(test[0, 0] - test[-1, 0]),
                   "ncm_acc_new_mean": derived["acc_new_mean"], "ncm_bwt": derived["bwt"],
                   "val_ncm_acc_all": pooled(np.array(self.matrix["val"][-1]), sizes["val"])}
        return figures

    def state_dict(self) -> dict[str, Any]:
        return {"matrix": self.matrix}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.matrix = {part: [list(row) for row in state["matrix"][part]] for part in PARTS}
