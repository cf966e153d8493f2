"""ER-ACE, experience replay with the asymmetric cross-entropy (Caccia et al. 2022, "New insights on
reducing abrupt representation change in online continual learning").

Training on the new task's samples with a softmax over every class pushes the old classes' scores down on
inputs that are not theirs, from data of the new task only: the old classes' representations change abruptly
when a task starts. ER-ACE keeps that pressure off the old classes. In a minibatch of rows i with class scores
s_i [C] (the maximum over time of the readout record) and labels y_i,

    L = 1 / B * sum_i [ logsumexp_{c in A_i} s_ic - s_{i y_i} ],

the cross-entropy of each row over its own set of classes A_i:

- a new row (``batch.replayed`` false): A = the classes of the incoming task (``tasks[t].classes``) and every
  class no task has brought yet (as the reference implementation unmasks the future classes): so the new
  samples never push down a class learned before;
- a replayed row: A = every class seen so far, tasks 0..t, the incoming one's included: replay is where the
  old and the new classes meet.

Rows come from the :class:`~spikecl.cl.plugins.replay.Replay` plugin's minibatches (``mix`` and
``replay_ratio`` say how many replayed rows each holds); the mean over all rows weighs new and replayed rows
by their counts. With one class per task (the progressive split) a new row's softmax is over its own
class and the classes still to come; in the last task none are left, so the new samples' term is 0 and
the last class is learned only through replay's rows, where it is pushed down: ER-ACE is meant for tasks
of several classes, and docs/methods.md reports what it does here. In a task that brings no new class (a
new speaker) A is every class for every row: plain cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.replay import Replay


def allowed_classes(replayed: Tensor, nb_classes: int, incoming: list[int], seen: list[int]) -> Tensor:
    """Bool mask [B, C] of the classes each row's softmax runs over: new rows the ``incoming`` task's classes
    and every class not in ``seen``, replayed rows every class in ``seen`` (see the module docstring)."""
    new_row = torch.ones(nb_classes, dtype=torch.bool, device=replayed.device)
    new_row[seen] = False
    new_row[incoming] = True
    old_row = torch.zeros(nb_classes, dtype=torch.bool, device=replayed.device)
    old_row[seen] = True
    return torch.where(replayed[:, None], old_row, new_row)


def masked_cross_entropy(scores: Tensor, labels: Tensor, allowed: Tensor) -> Tensor:
    """Mean over rows of the cross-entropy of ``scores`` [B, C] restricted to the ``allowed`` classes [B, C]
    (every row's label must be allowed)."""
    return F.cross_entropy(scores.masked_fill(~allowed, float("-inf")), labels)


class ERACE(Plugin):
    """The asymmetric cross-entropy of ER-ACE as the main loss (see the module docstring); needs Replay."""

    requires = (Replay,)
    replaces_criterion = True

    def criterion(self, ctx: Context, batch: Batch, scores: Tensor) -> Tensor | None:
        incoming = list(ctx.tasks[ctx.task].classes)
        seen = sorted(set().union(*(ctx.tasks[t].classes for t in range(ctx.task + 1))))
        allowed = allowed_classes(batch.replayed, scores.shape[1], incoming, seen)
        return masked_cross_entropy(scores, batch.labels, allowed)
