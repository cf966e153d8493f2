"""GDumb (Prabhu et al. 2020, "GDumb: a simple approach that questions our progress in continual learning").

A memory-only baseline: a greedy class-balanced sampler fills the memory from the stream, and the learner
is trained from its initial state on the memory alone whenever it is asked to predict. Here, after every
task t:

1. the task's train samples join the :class:`~spikecl.cl.plugins.replay.Replay` plugin's buffer at once
   (:meth:`Replay.store_until`; a class-balanced policy, ``policy=class_balanced``, is GDumb's sampler);
2. the trainable parameters go back to their **initial state**, and the optimiser's state is cleared;
3. ``epochs`` epochs train them on the buffer alone, in minibatches of ``strategy.batch_size`` drawn in a
   fresh random order every epoch (stream ``gdumb_order``), every learning rate times ``lr_scale``.

The initial state is the network the continual phase starts from: the pretrained weights, with the readout
column of every class learned since drawn as :class:`~spikecl.cl.plugins.readout.NewClassReadout` drew it
when the class arrived (same stream, so the same column). Not a random network, as in the paper: the
layers below the latent depth are frozen and pretrained in every spikecl strategy, the buffer holds their
activity, and only a share of the pretraining samples stays in the buffer, so a random upper network would
throw away what pretraining learned from the others. The re-drawn columns matter: a class score is the
maximum of the readout record over time, floored at 0 by the record's initial step, and pretraining drives
the columns of the classes it never saw so low that their scores sit on that floor, where they get no
gradient (real voices, after pretraining on digits 0-4: 22-98% of the validation samples score exactly 0
on each of digits 5-9, mean scores 0.00-0.04 against 3-4 on the pretrained digits).

Nothing is learned from the stream: the task's own epochs get no minibatches (their evaluations see the
weights unchanged; ``strategy=gdumb`` turns the per-epoch ones off), and the phase is all the training,
``epochs`` epochs per task (``strategy=gdumb``: the strategy's ``epochs``, so a preset's budget per task
applies); its samples are replayed ones (``batch.replayed``). Other plugins' hooks run during the phase as
during any phase. A task's samples are stored at its end, so the buffer at the end also holds the last
task's samples.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Minibatch, Piece, minibatches
from spikecl.cl.plugin import Phase, Plugin
from spikecl.cl.plugins.params import named_trainable, snapshot
from spikecl.cl.plugins.readout import NewClassReadout
from spikecl.cl.plugins.replay import Replay
from spikecl.utils import checks, streams


class GDumb(Plugin):
    """Retrain from the initial state on the buffer alone after every task (see the module docstring).

    Args:
        epochs: epochs of training on the buffer after each task.
        lr_scale: the phase's learning rates are the strategy's times this.
    """

    requires = (Replay,)
    follows = (Replay, NewClassReadout)  # the initial state holds the first learned class's drawn column

    def __init__(self, *, epochs: int, lr_scale: float) -> None:
        self.epochs = checks.integer("epochs", epochs, 1)
        self.lr_scale = checks.number("lr_scale", lr_scale)
        self.initial: dict[str, Tensor] = {}  # parameter name -> value when the continual phase started

    def before_task(self, ctx: Context, task: int) -> None:
        if not self.initial:
            self.initial = snapshot(list(ctx.model.named_parameters()))

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        ctx.batches = []  # nothing is learned from the stream: the phase after the task is all the training

    def phases(self, ctx: Context, task: int) -> list[Phase]:
        # The loop asks for a plugin's phases right before it runs them: the restart happens here, after
        # the task's epochs and any phase of the plugins before this one.
        replay = ctx.plugin(Replay)
        replay.store_until(ctx, task)
        self.restart(ctx, task)
        source = replay.source

        def plan(epoch: int) -> list[Minibatch]:
            order = streams.gdumb_order(ctx.seed, task, epoch).permutation(len(source))
            return [[Piece(source, b, True)] for b in minibatches(order, ctx.batch_size)]

        return [Phase("gdumb", self.epochs, plan, self.lr_scale)]

    def restart(self, ctx: Context, task: int) -> None:
        """The trainable parameters back to the initial state, the learned classes' columns re-drawn, the
        optimiser's moments cleared."""
        with torch.no_grad():
            for name, p in named_trainable(ctx):
                p.copy_(self.initial[name].to(p.device))
        readout = ctx.plugin(NewClassReadout)
        if readout is not None:
            for t in range(1, task + 1):  # draws the column of every class task t brought, from its stream
                readout.before_task(ctx, t)
        ctx.optimizer.state.clear()  # a fresh optimiser: the moments of the weights before the restart are void

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial = dict(state["initial"])
