"""Joint training, the upper bound of continual learning: one model trained on every task's data at once.

:class:`JointTraining` is a plugin of the *pretraining* strategy (``pretrain.plugins.joint``; the option
``strategy=joint`` adds it and sets a continual phase that trains nothing). Before pretraining's first
epoch it replaces ``ctx.new``, which the loop built from task 0's train portion, with a source over the
union of the ``train`` portions of every task (never their validation or test parts), in task order. The
pretraining schedule (epochs, optimiser, batch size) is kept, so an epoch of joint costs the union's samples
over pretraining's: about 2x for the progressive split's 10 + 10 classes (measured: 2.00x with its 11 tasks),
not ``len(tasks)`` x; every row of the accuracy matrix is then the joint model's accuracy.
"""

from __future__ import annotations

import logging

import numpy as np

from collections.abc import Sequence

from spikecl.cl.context import Context
from spikecl.cl.plugin import Plugin
from spikecl.cl.sources import task_source
from spikecl.errors import ConfigError

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

    def figures(self, ctx: Context) -> dict[str, int]:
        return {"joint_train_samples": self.samples}

    stage = 0  # replaces the phase's data before anything uses it
    learns_every_task = True

    def check(self, key: str, latent_depth: int | None, plugins: Sequence[Plugin]) -> None:
        if key != "pretrain":
            raise ConfigError(f"{key}.plugins has a JointTraining plugin; it trains the pretraining phase on every "
                              "task at once: use strategy=joint (it sets pretrain.plugins.joint)")

    def before_task(self, ctx: Context, task: int) -> None:
        indices = joint_train_indices(ctx.tasks)
        ctx.new = task_source(ctx, indices)
        self.samples = len(indices)
        log.info("joint training: %d train samples of %d tasks (task 0 alone: %d)", len(indices), len(ctx.tasks),
                 len(ctx.tasks[0].train))
