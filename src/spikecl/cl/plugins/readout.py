"""A fresh readout column for every class that pretraining never saw (the paper's CL scripts do it)."""

from __future__ import annotations

import torch

from spikecl.cl.context import Context
from spikecl.cl.plugin import Plugin


class NewClassReadout(Plugin):
    """Before a task, the readout column of each class not in the pretraining task ~ N(mean, std).

    The paper re-draws these columns as N(0.003, 0.003); the generator is seeded by (seed, task).
    """

    def __init__(self, mean: float = 0.003, std: float = 0.003) -> None:
        self.mean, self.std = float(mean), float(std)

    def before_task(self, ctx: Context, task: int) -> None:
        seen = set(ctx.tasks[0].classes)
        new_classes = [c for c in ctx.tasks[task].classes if c not in seen]
        if task == 0 or not new_classes:
            return
        # one column per class, drawn in class order from the paper's stream
        gen = torch.Generator().manual_seed(ctx.seed * 1000 + task)
        ctx.model.reset_class_columns(new_classes, self.mean, self.std, gen)
