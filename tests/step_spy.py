"""A plugin that watches the first optimiser steps of every task, for tests that check them step by step.

Add it with ``+pretrain.plugins.spy._target_=tests.step_spy.StepSpy`` (and the same under ``strategy``); as any
plugin of the default stage it runs after the readout and replay plugins, so its ``before_task`` sees the
readout columns they drew. It changes nothing: its loss term
is None. What it saw goes to :data:`SEEN`, task -> :class:`Steps` (the tests run in one process).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from spikecl.cl import Batch, Context, Plugin

STEPS = 3  # minibatches watched per task (the first ones of its first epoch)


@dataclass
class Steps:
    """The first minibatches of one task as the loop trained them."""

    ctx: Context
    lr: float
    batch_size: int
    w_out: Tensor                                          # the readout after every before_task hook
    scores: list[Tensor] = field(default_factory=list)     # class scores [B, C] the loss was computed from
    labels: list[Tensor] = field(default_factory=list)
    replayed: list[Tensor] = field(default_factory=list)
    params: list[list[Tensor]] = field(default_factory=list)  # the trained parameters before each step
    grads: list[list[Tensor]] = field(default_factory=list)   # and their gradients

    def after_step(self, k: int) -> list[Tensor]:
        """The trained parameters after step ``k`` (< STEPS - 1): those the next step started from."""
        return self.params[k + 1]


SEEN: dict[int, Steps] = {}


class StepSpy(Plugin):
    """Records the first :data:`STEPS` minibatches of every task into :data:`SEEN`."""

    def before_task(self, ctx: Context, task: int) -> None:
        SEEN[task] = Steps(ctx=ctx, lr=ctx.optimizer.param_groups[0]["lr"], batch_size=ctx.batch_size,
                           w_out=ctx.model.w_out.detach().clone())

    def loss(self, ctx: Context, batch: Batch, out: Tensor) -> Tensor | None:
        steps = SEEN[ctx.task]
        if len(steps.scores) < STEPS:
            steps.scores.append(out.detach().clone())
            steps.labels.append(batch.labels.detach().clone())
            steps.replayed.append(batch.replayed.detach().clone())
        return None

    def after_backward(self, ctx: Context, task: int) -> None:
        steps = SEEN[task]
        if len(steps.params) < STEPS:
            steps.params.append([p.detach().clone() for p in ctx.trainable])
            steps.grads.append([p.grad.detach().clone() for p in ctx.trainable])
