"""The plugin interface of the continual-learning loop: what a method can hook into, and what it sees.

A continual-learning method is a :class:`Plugin`: a small object whose hooks the loop
(:class:`spikecl.cl.loop.Strategy`) calls, in this order, for every task it trains::

    before_task(ctx, task)
        for each epoch:
            before_epoch(ctx, task, epoch)       # may change ctx.batches, this epoch's minibatch plan
            for each minibatch, inside every plugin's minibatch_context(ctx, parts):
                loss(ctx, batch, out)            # an extra loss term (or None), added to the model's loss
                after_backward(ctx, task)        # gradients are in p.grad; the optimiser step follows
            after_epoch(ctx, task, epoch)
    after_task(ctx, task)

Every hook is a no-op here, so a plugin overrides only what it needs. The model's own loss (log-softmax +
NLL on the class scores, plus the spike regularisers) belongs to the loop; plugin terms are added to it.
A plugin that keeps state across tasks (a buffer, importances, a copy of the model) returns it from
:meth:`state_dict` so that checkpoints can restore it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:  # only for annotations: the loop imports this module
    from spikecl.cl.context import Context
    from spikecl.engine import Part


@dataclass
class Batch:
    """One minibatch as the loop trains it.

    ``z`` is the entry activity [B, T, W] at the strategy's training depth (``ctx.strategy.depth``: the
    input current at 0, the spikes of hidden layer d at d), ``labels`` the classes [B] and ``replayed`` a
    bool mask [B] of the samples that came from a replay buffer. ``spikes`` are the last hidden layer's
    spikes [B, T, H_L] in this forward pass.
    """

    z: Tensor
    labels: Tensor
    replayed: Tensor
    spikes: Tensor


class Plugin:
    """Base class of continual-learning methods: every hook is a no-op (see the module docstring)."""

    def before_task(self, ctx: Context, task: int) -> None:
        """Before the first epoch of ``task`` (the optimiser of the task exists: ``ctx.optimizer``)."""

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based); ``ctx.batches`` holds the epoch's minibatches of new data."""

    def loss(self, ctx: Context, batch: Batch, out: Tensor) -> Tensor | None:
        """An extra loss term for ``batch`` given its class scores ``out`` [B, C], or None."""
        return None

    def minibatch_context(self, ctx: Context, parts: list[Part]) -> AbstractContextManager | None:
        """A context manager the loop enters around one minibatch ``parts`` (its entry activity, forward pass,
        loss, backward pass and optimiser step), e.g. other neuron dynamics for replayed parts; or None."""
        return None

    def after_backward(self, ctx: Context, task: int) -> None:
        """After the backward pass of a minibatch, before the optimiser's step."""

    def after_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        """After epoch ``epoch`` (and its evaluation)."""

    def after_task(self, ctx: Context, task: int) -> None:
        """After the last epoch of ``task``."""

    def state_dict(self) -> dict[str, Any]:
        """What this plugin carries from task to task, for checkpoints (tensors, arrays, numbers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
