"""A fresh readout column for every class that pretraining never saw (the paper's CL scripts do it)."""

from __future__ import annotations

from spikecl.cl.context import Context
from spikecl.cl.plugin import Plugin
from spikecl.utils import checks, streams


class NewClassReadout(Plugin):
    """Before a task, the readout column of each class not in the pretraining task ~ N(mean, std).

    The paper re-draws these columns as N(0.003, 0.003) (``conf/strategy/naive.yaml``), from the stream
    ``readout_columns`` (:mod:`spikecl.utils.streams`).
    """

    stage = 0  # the model's structure: every other plugin sees the new columns

    def __init__(self, *, mean: float, std: float) -> None:
        self.mean, self.std = checks.real("mean", mean), checks.number("std", std, positive=False)

    def before_task(self, ctx: Context, task: int) -> None:
        seen = set(ctx.tasks[0].classes)
        new_classes = [c for c in ctx.tasks[task].classes if c not in seen]
        if task == 0 or not new_classes:
            return
        ctx.model.reset_class_columns(new_classes, self.mean, self.std, streams.readout_columns(ctx.seed, task))
