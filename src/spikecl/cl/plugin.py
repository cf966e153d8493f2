"""The plugin interface of the continual-learning loop: what a method can hook into, and what it declares.

A continual-learning method is a :class:`Plugin`: a small object whose hooks the loop
(:class:`spikecl.cl.loop.Strategy`) calls, in this order, for every task it trains::

    before_task(ctx, task)
        for each epoch:
            before_epoch(ctx, task, epoch)       # may change ctx.batches, this epoch's minibatches
            for each minibatch (under every plugin's dynamics and lr_factor for it):
                criterion(ctx, batch, scores)    # the main loss (None: the loop's mean NLL); one plugin at most
                loss(ctx, batch, scores)         # an extra loss term (or None), added to the main loss
                after_backward(ctx, task)        # gradients are in p.grad; the optimiser step follows
            after_epoch(ctx, task, epoch)
        for each Phase of every plugin's phases(ctx, task):   # e.g. consolidation on the buffer
            for each epoch: its minibatches, with criterion, loss and after_backward as above
    after_task(ctx, task)

Every hook is a no-op here, so a plugin overrides only what it needs. Extra training after a task is a
:class:`Phase` that the loop runs (the same steps, optimiser and hooks), before any ``after_task`` hook:
so every plugin's state lives across it, whatever the order of the plugins.

**Order.** A plugin declares what it needs and whom it follows, as class attributes: ``requires`` (plugin
types that must be in the same strategy), ``excludes`` (plugin types it cannot run with), ``follows``
(plugin types whose hooks run before its own when both are present) and ``stage`` (a coarse rank: 0
changes the model's structure, e.g. new readout columns; 10 chooses the data, e.g. replay; 30 changes the
weights after a task, e.g. weight aligning, so that whatever records the weights sees the final ones; 50
everything else). The strategy checks these when it is built (one line for an impossible combination) and
orders its plugins by them, ties broken by class name: the order of a config's list never matters, so two
plugins do the same in either order.

A plugin that keeps state across tasks (a buffer, importances, a copy of the model) returns it from
:meth:`state_dict` (tensors, numbers, strings, lists and dicts of them: checkpoints are loaded with
``weights_only``), and what it reports for ``summary.json`` from :meth:`figures`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch, Minibatch, TimeScale


@dataclass
class Phase:
    """Training a plugin adds after a task's epochs: ``epochs`` passes, epoch e (1-based) over the minibatches
    ``plan(e)``, every learning rate times ``lr_scale``; ``name`` names it in logs and messages."""

    name: str
    epochs: int
    plan: Callable[[int], list[Minibatch]]
    lr_scale: float = 1.0


class Plugin:
    """Base class of continual-learning methods: every hook is a no-op (see the module docstring)."""

    requires: ClassVar[tuple[type, ...]] = ()
    excludes: ClassVar[tuple[type, ...]] = ()
    follows: ClassVar[tuple[type, ...]] = ()
    stage: ClassVar[int] = 50
    replaces_criterion: ClassVar[bool] = False
    learns_every_task: ClassVar[bool] = False  # a pretraining plugin that leaves the continual phase nothing

    def check(self, key: str, latent_depth: int | None, plugins: Sequence[Plugin]) -> None:
        """Raise a one-line ConfigError if this plugin cannot work in the strategy at config key ``key`` with
        ``latent_depth`` and ``plugins`` (all of them, this one included); called when the strategy is built."""

    def before_task(self, ctx: Context, task: int) -> None:
        """Before the first epoch of ``task`` (the optimiser of the task exists: ``ctx.optimizer``)."""

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based); ``ctx.batches`` holds the epoch's minibatches of new data."""

    def dynamics(self, ctx: Context, pieces: Minibatch) -> TimeScale | None:
        """Other dynamics for the minibatch ``pieces`` (short-time replay), or None."""
        return None

    def lr_factor(self, ctx: Context, pieces: Minibatch) -> float:
        """A factor on every learning rate for the step on ``pieces`` (1: none)."""
        return 1.0

    def criterion(self, ctx: Context, batch: Batch, scores: Tensor) -> Tensor | None:
        """The main loss of ``batch`` from its class scores [B, C], replacing the loop's mean NLL, or None.
        A plugin that returns one declares ``replaces_criterion = True``; two of them cannot run together."""
        return None

    def loss(self, ctx: Context, batch: Batch, scores: Tensor) -> Tensor | None:
        """An extra loss term for ``batch`` given its class scores [B, C], or None."""
        return None

    def after_backward(self, ctx: Context, task: int) -> None:
        """After the backward pass of a minibatch, before the optimiser's step."""

    def after_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        """After epoch ``epoch`` of the task (and its evaluation)."""

    def phases(self, ctx: Context, task: int) -> list[Phase]:
        """Training to run after the task's last epoch, before any ``after_task`` hook."""
        return []

    def after_task(self, ctx: Context, task: int) -> None:
        """After the last epoch of ``task`` and every plugin's phases."""

    def figures(self, ctx: Context) -> dict[str, Any]:
        """What this plugin reports in ``summary.json`` (e.g. the buffer's size); JSON-able values."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What this plugin carries from task to task, for checkpoints (tensors, numbers, strings)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned: the plugin is then as it was when that was taken (a
        checkpoint after the last task is summarised without any further hook)."""
