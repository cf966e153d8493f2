"""Learning without Forgetting (Li and Hoiem 2017), on the class scores of the spiking network.

At the start of task t a frozen copy of the network, theta_o, keeps the function learned so far. Every
training minibatch then adds the distillation term

    weight * T^2 * KL( softmax(s_o / T) || softmax(s / T) ),

averaged over the minibatch, with s the class scores of the network being trained, s_o those of the frozen
copy on the same samples, T the temperature, and both restricted to the old classes (the classes of tasks
0..t-1: the "old task outputs" of the paper). The T^2 keeps the term's gradient on the scale of the
cross-entropy's as T changes (Hinton et al. 2015).

All samples of a minibatch are distilled, new and replayed alike: the frozen copy's scores on replayed
samples are as much a record of the old function as those on new samples, and with ``mix=mixed`` this
keeps every minibatch's term alike. The copy's scores come from the same entry activity ``batch.z`` at the
training depth, under the same dynamics as the network being trained (short-time replay's time-scaled
constants, say: :meth:`Batch.scores_of <spikecl.cl.minibatch.Batch.scores_of>`), without autograd. The copy
is kept until ``after_task``, so it also serves the phases other plugins add (consolidation). Where the layers below that depth train as well (depth 0 with W1
trained: naive or rehearsal without a latent depth), ``z`` was computed with the current W1, so the copy
sees the current first projection rather than its own.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.params import old_classes
from spikecl.utils import checks



def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode whose parameters take no gradient."""
    prev = copy.deepcopy(model).eval()
    for p in prev.parameters():
        p.requires_grad_(False)
        p.grad = None
    return prev


class LwF(Plugin):
    """Learning without Forgetting (see the module docstring).

    Args:
        weight: the distillation term's weight (lambda_o of the paper).
        temperature: T of the softened softmax.
    """

    def __init__(self, *, weight: float, temperature: float) -> None:
        self.weight = checks.number("weight", weight, positive=False)
        self.temperature = checks.number("temperature", temperature)
        self.prev: nn.Module | None = None
        self.old: Tensor | None = None

    def before_task(self, ctx: Context, task: int) -> None:
        self.prev = frozen_copy(ctx.model)
        self.old = torch.as_tensor(old_classes(ctx, task), dtype=torch.int64, device=ctx.device)

    def loss(self, ctx: Context, batch: Batch, out: Tensor) -> Tensor | None:
        if self.prev is None or not len(self.old):
            return None
        t = self.temperature
        target = F.softmax(batch.scores_of(self.prev)[:, self.old] / t, 1)
        log_p = F.log_softmax(out[:, self.old] / t, dim=1)
        return self.weight * t * t * F.kl_div(log_p, target, reduction="batchmean")

    def after_task(self, ctx: Context, task: int) -> None:
        self.prev, self.old = None, None  # the copy is needed only while its task trains (checkpoints come after)
