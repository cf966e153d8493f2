"""Joint training, the upper bound of continual learning: one model trained on every task's data at once.

:class:`JointTraining` is a plugin of the *pretraining* strategy (``pretrain.plugins.joint``; the option
``strategy=joint`` adds it and sets a continual phase that trains nothing). Before pretraining's first
epoch it replaces ``ctx.new``, which the loop built from task 0's train portion, with a source over the
union of the ``train`` portions of every task (never their validation or test parts), in task order. The
pretraining schedule (epochs, optimiser, batch size) is kept, so joint costs ``len(tasks)`` times the
samples of pretraining per epoch; every row of the accuracy matrix is then the joint model's accuracy.
"""

from __future__ import annotations

import logging

import numpy as np

from spikecl.cl.context import Context
from spikecl.cl.plugin import Plugin
from spikecl.cl.sources import CachedLatents, RawSource

log = logging.getLogger(__name__)


def joint_train_indices(tasks) -> np.ndarray:
    """The train indices of every task, in task order (a sample belongs to one task's train part only)."""
    parts = [np.asarray(t.train, dtype=np.int64) for t in tasks]
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if np.unique(indices).size != indices.size:  # the splits never share samples; say so if one ever does
        raise ValueError("tasks share train samples: joint training would count them twice")
    return indices


class JointTraining(Plugin):
    """Train task 0's phase on the train portions of all tasks (attach to ``pretrain.plugins``).

    ``samples`` is how many training samples the joint phase used (0 until it ran).
    """

    def __init__(self) -> None:
        self.samples = 0

    def before_task(self, ctx: Context, task: int) -> None:
        if task != 0:  # only the phase it belongs to: pretraining
            return
        indices = joint_train_indices(ctx.tasks)
        depth = ctx.strategy.latent_depth
        if depth is None:  # as the loop builds its new-data source
            ctx.new = RawSource(ctx.model, ctx.data.spikes, indices, ctx.data.labels, 0, ctx.device)
        else:
            ctx.new = CachedLatents(ctx.model, ctx.data.spikes, indices, ctx.data.labels, ctx.strategy.depth,
                                    ctx.device)
        self.samples = len(indices)
        log.info("joint training: %d train samples of %d tasks (task 0 alone: %d)", len(indices), len(ctx.tasks),
                 len(ctx.tasks[0].train))
