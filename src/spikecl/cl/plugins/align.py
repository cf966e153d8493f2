"""Weight aligning (Zhao et al. 2020, "Maintaining discrimination and fairness in class incremental learning").

Training on a task's new classes with little or no data of the old ones leaves the new classes' readout
weights larger than the old classes', which biases the predictions towards the new classes. After each task
the readout columns of the classes it brought (``w_out[:, c]``, c new) are scaled by

    gamma = mean_{c old} ||w_out[:, c]|| / mean_{c new} ||w_out[:, c]||,

so the new columns' mean norm equals the old columns' mean norm; one factor for all new columns keeps
their relative norms. With one new class per task (the progressive split) that column's norm becomes the
old classes' mean norm. Old classes are those of the tasks before; a task without new classes (a new
speaker of known classes) changes nothing.
"""

from __future__ import annotations


from spikecl.cl.context import Context
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.params import old_classes



class WeightAlign(Plugin):
    """Scale the new classes' readout columns to the old classes' mean norm after each task."""

    stage = 30  # changes the weights after a task: whatever records them (EWC, SI) sees the aligned ones

    def after_task(self, ctx: Context, task: int) -> None:
        old = old_classes(ctx, task)
        new = sorted(set(ctx.tasks[task].classes) - set(old))
        if not old or not new:
            return
        norms = ctx.model.class_column_norms()
        new_norm = norms[new].mean()
        if new_norm > 0:  # all-zero new columns have no direction to scale
            ctx.model.scale_class_columns(new, norms[old].mean() / new_norm)
