"""The one loop that trains every phase, pretraining included, and calls the plugins' hooks.

:meth:`Strategy.learn` trains one task: the layers below ``latent_depth`` are frozen (all layers train
when it is None), a fresh optimiser is built over the rest, and ``epochs`` passes go over the task's new
data; the plugins (:mod:`spikecl.cl.plugin`) add replayed samples, loss terms and whatever else a method
needs through their hooks. Pretraining is this loop on task 0 with no plugins and ``latent_depth=None``.

``latent_depth`` (None or 0..L) is where training starts: the new data's activity at that depth is computed
once per task with the frozen layers (:class:`~spikecl.cl.sources.CachedLatents`), so uncompressed latent
replay is exactly rehearsal of the same samples through the same frozen layers (seed-spec 3.0), only cheaper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from spikecl.cl.context import Context
from spikecl.cl.plugin import Batch, Plugin
from spikecl.cl.sources import CachedLatents, RawSource
from spikecl.engine import Part, check_finite, frozen_except, minibatches
from spikecl.errors import ConfigError
from spikecl.models.lif import class_scores
from spikecl.utils import checks


class Strategy:
    """A training schedule and the plugins that make it a continual-learning method.

    Args:
        name: what reports call it (``naive``, ``latent_replay``, ...).
        latent_depth: None (train every layer from raw input) or 0..L (freeze the layers below).
        epochs, lr, batch_size: per task.
        optimizer: a partial optimiser, called with the trainable parameters at the start of every task
            (a fresh optimiser per task, as the paper).
        plugins: name -> :class:`Plugin`, whose hooks run in this order.
        config_key: where the settings live in the config, for messages (``strategy`` or ``pretrain``).
    """

    def __init__(self, *, name: str = "custom", latent_depth: int | None = None, epochs: int, lr: float,
                 batch_size: int, optimizer: Callable[..., torch.optim.Optimizer],
                 plugins: Mapping[str, Plugin] | None = None, config_key: str = "strategy") -> None:
        self.name = str(name)
        self.latent_depth = None if latent_depth is None else checks.integer("latent_depth", latent_depth, 0)
        self.epochs = checks.integer("epochs", epochs, 0)
        self.lr = checks.number("lr", lr)
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.optimizer = optimizer
        self.plugins: dict[str, Plugin] = dict(plugins or {})
        for key, plugin in self.plugins.items():
            if not isinstance(plugin, Plugin):
                raise ConfigError(f"plugins.{key} is a {type(plugin).__name__}, not a spikecl.cl.Plugin; point its "
                                  "_target_ at a subclass of spikecl.cl.Plugin")
        self.config_key = config_key

    @property
    def depth(self) -> int:
        """Depth of the entry activity: 0 (input current) when nothing is frozen."""
        return 0 if self.latent_depth is None else self.latent_depth

    def plugin(self, kind: type[Plugin]) -> Plugin | None:
        """The first plugin that is a ``kind``, or None."""
        return next((p for p in self.plugins.values() if isinstance(p, kind)), None)

    def _hook(self, name: str, *args) -> None:
        for plugin in self.plugins.values():
            getattr(plugin, name)(*args)

    def learn(self, ctx: Context, task: int) -> None:
        """Train on task ``task`` (0: pretraining); ``ctx.on_epoch`` reports every epoch."""
        model, data = ctx.model, ctx.data
        ctx.strategy, ctx.task = self, task
        ctx.trainable = model.layer_parameters(self.latent_depth)
        frozen_except(model, ctx.trainable)
        train_idx = ctx.tasks[task].train
        if self.latent_depth is None:
            ctx.new = RawSource(model, data.spikes, train_idx, data.labels, 0, ctx.device)
        else:
            ctx.new = CachedLatents(model, data.spikes, train_idx, data.labels, self.depth, ctx.device)
        ctx.optimizer = self.optimizer(ctx.trainable)
        # The streams of minibatch order: [seed, 0] for pretraining, [seed, 2, task] after (as in 0.1).
        ctx.rng = np.random.default_rng([ctx.seed, 0] if task == 0 else [ctx.seed, 2, task])
        self._hook("before_task", ctx, task)
        phase = "pretrain" if task == 0 else "cl"
        desc = "pretraining" if task == 0 else f"task {task} ({ctx.tasks[task].name})"
        for epoch in tqdm(range(1, self.epochs + 1), desc=desc, unit="epoch", disable=not ctx.progress):
            ctx.batches = [[Part(ctx.new, b)] for b in minibatches(ctx.rng.permutation(len(ctx.new)), self.batch_size)]
            self._hook("before_epoch", ctx, task, epoch)
            loss = ctx.timer.run(partial(self.train_epoch, ctx, task, f"{phase} epoch {epoch}"))
            check_finite(loss, phase, task, epoch, f"{self.config_key}.lr")
            ctx.on_epoch(task, epoch, loss)
            self._hook("after_epoch", ctx, task, epoch)
        frozen_except(model, model.parameters())
        self._hook("after_task", ctx, task)

    def train_epoch(self, ctx: Context, task: int, desc: str = "") -> tuple[float, int]:
        """One pass over ``ctx.batches``, one optimiser step each; returns the mean loss and the samples seen."""
        ctx.model.train()
        total, seen = 0.0, 0  # a tensor on the device after the first step: reading it every step would sync a GPU
        for parts in tqdm(ctx.batches, desc=desc, leave=False, disable=not ctx.progress):
            with ExitStack() as scope:  # what plugins set up around a minibatch (short-time replay's dynamics)
                for plugin in self.plugins.values():
                    manager = plugin.minibatch_context(ctx, parts)
                    if manager is not None:
                        scope.enter_context(manager)
                loss, n = self.train_step(ctx, task, parts)
            total = total + loss * n
            seen += n
        return float(total) / max(seen, 1), seen

    def train_step(self, ctx: Context, task: int, parts: list[Part]) -> tuple[torch.Tensor, int]:
        """One optimiser step on the minibatch ``parts``; returns its loss (detached) and size.

        The loss is the model's (log-softmax + NLL of the class scores, plus the spike regulariser of the last
        hidden layer) plus every plugin's term.
        """
        model, optimizer = ctx.model, ctx.optimizer
        if len(parts) > 1:
            z = torch.cat([p.source.entry(p.idx) for p in parts])
        else:
            z = parts[0].source.entry(parts[0].idx)
        y = torch.cat([p.source.labels[p.idx] for p in parts])
        out, spikes = model.from_latent(z, self.depth, return_spikes=True)
        scores = class_scores(out)
        loss = F.nll_loss(F.log_softmax(scores, dim=1), y) + ctx.reg(spikes)
        if self.plugins:
            replayed = torch.cat([torch.full((len(p.idx),), p.replayed, device=y.device) for p in parts])
            batch = Batch(z, y, replayed, spikes)
            for plugin in self.plugins.values():
                term = plugin.loss(ctx, batch, scores)
                if term is not None:
                    loss = loss + term
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._hook("after_backward", ctx, task)
        optimizer.step()
        return loss.detach(), len(y)
