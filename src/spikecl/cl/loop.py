"""The one loop that trains every phase, pretraining included, and calls the plugins' hooks.

:meth:`Strategy.learn` trains one task: the layers below ``latent_depth`` are frozen (all layers train when
it is None), a fresh optimiser is built over the rest, and ``epochs`` passes go over the task's new data;
then every plugin's extra :class:`~spikecl.cl.plugin.Phase` runs (consolidation, say), then the
``after_task`` hooks. The plugins (:mod:`spikecl.cl.plugin`) add replayed samples, loss terms and whatever
else a method needs through their hooks, in the order their declarations give. Pretraining is this loop on
task 0 with ``latent_depth=None``.

``latent_depth`` (None or 0..L) is where training starts: the new data's activity at that depth is computed
once per task with the frozen layers (:class:`~spikecl.cl.sources.CachedLatents`), so uncompressed latent
replay is exactly rehearsal of the same samples through the same frozen layers (seed-spec 3.0), only cheaper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch, Minibatch, Piece, minibatches
from spikecl.cl.plugin import Phase, Plugin
from spikecl.cl.sources import task_source
from spikecl.errors import ConfigError, TrainingDiverged
from spikecl.models import class_scores
from spikecl.utils import checks, interrupts, streams


class Strategy:
    """A training schedule and the plugins that make it a continual-learning method.

    Args:
        name: what reports call it (``naive``, ``latent_replay``, ...).
        latent_depth: None (train every layer from raw input) or 0..L (freeze the layers below).
        epochs, lr, batch_size: per task.
        optimizer: a partial optimiser, called with the trainable parameters at the start of every task
            (a fresh optimiser per task, as the paper).
        plugins: name -> :class:`Plugin`; checked and put in hook order here (:func:`hook_order`).
        config_key: where the settings live in the config, for messages (``strategy`` or ``pretrain``).
    """

    def __init__(self, *, name: str, latent_depth: int | None, epochs: int, lr: float, batch_size: int,
                 optimizer: Callable[..., torch.optim.Optimizer], plugins: Mapping[str, Plugin] | None = None,
                 config_key: str = "strategy") -> None:
        self.name = str(name)
        self.latent_depth = None if latent_depth is None else checks.integer("latent_depth", latent_depth, 0)
        self.epochs = checks.integer("epochs", epochs, 0)
        self.lr = checks.number("lr", lr)
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.optimizer = optimizer
        self.config_key = config_key
        self.plugins = hook_order(plugins or {}, config_key)
        for plugin in self.plugins.values():
            plugin.check(config_key, self.latent_depth, list(self.plugins.values()))

    @property
    def entry_depth(self) -> int:
        """Depth of the entry activity: 0 (the input current) when nothing is frozen."""
        return 0 if self.latent_depth is None else self.latent_depth

    def check_depth(self, nb_layers: int) -> None:
        """ConfigError unless ``latent_depth`` is a layer of a network with ``nb_layers`` hidden layers."""
        if self.latent_depth is not None and self.latent_depth > nb_layers:
            raise ConfigError(f"{self.config_key}.latent_depth={self.latent_depth} is not valid; allowed: "
                              f"0..{nb_layers} for {nb_layers} hidden layers (0: input currents, d: spikes of "
                              "hidden layer d)")

    def plugin(self, kind: type[Plugin]) -> Plugin | None:
        """The first plugin that is a ``kind``, or None."""
        return next((p for p in self.plugins.values() if isinstance(p, kind)), None)

    def _hook(self, name: str, *args: Any) -> None:
        for plugin in self.plugins.values():
            getattr(plugin, name)(*args)

    # ---------------------------------------------------------------------------------------- one task

    def learn(self, ctx: Context, task: int) -> None:
        """Train on task ``task`` (0: pretraining); ``ctx.on_epoch`` reports every epoch."""
        model = ctx.model
        ctx.task, ctx.latent_depth, ctx.batch_size = task, self.latent_depth, self.batch_size
        ctx.plugins, ctx.lr_key = tuple(self.plugins.values()), f"{self.config_key}.lr"
        ctx.trainable = model.layer_parameters(self.latent_depth)
        frozen_except(model, ctx.trainable)
        ctx.new = task_source(ctx, ctx.tasks[task].train)
        ctx.optimizer = self.optimizer(ctx.trainable)
        ctx.rng = streams.minibatch_order(ctx.seed, task)
        self._hook("before_task", ctx, task)
        desc = "pretraining" if task == 0 else f"task {task} ({ctx.tasks[task].name})"
        for epoch in tqdm(range(1, self.epochs + 1), desc=desc, unit="epoch", disable=not ctx.progress):
            ctx.batches = [[Piece(ctx.new, b)] for b in minibatches(ctx.rng.permutation(len(ctx.new)), self.batch_size)]
            self._hook("before_epoch", ctx, task, epoch)
            loss = self._train_epoch(ctx, task, ctx.batches, f"{desc} epoch {epoch}")
            ctx.on_epoch(task, epoch, loss)
            self._hook("after_epoch", ctx, task, epoch)
        for plugin in self.plugins.values():
            for phase in plugin.phases(ctx, task):
                self.run_phase(ctx, task, phase)
        frozen_except(model, model.parameters())
        self._hook("after_task", ctx, task)

    def run_phase(self, ctx: Context, task: int, phase: Phase) -> None:
        """Train ``phase`` (a plugin's extra epochs after the task) with the task's optimiser and trainable
        parameters, every learning rate times ``phase.lr_scale``."""
        with scaled_lr(ctx.optimizer, phase.lr_scale):
            for epoch in range(1, phase.epochs + 1):
                self._train_epoch(ctx, task, phase.plan(epoch), f"{phase.name} {task} epoch {epoch}")

    def _train_epoch(self, ctx: Context, task: int, batches: list[Minibatch], desc: str) -> float:
        """One pass over ``batches`` (timed), then the divergence checks; returns the mean loss."""
        loss = ctx.timer.run(partial(self.train_epoch, ctx, task, batches, desc))
        check_finite(loss, ctx.trainable, desc, ctx.lr_key)
        return loss

    def train_epoch(self, ctx: Context, task: int, batches: list[Minibatch], desc: str = "") -> tuple[float, int]:
        """One optimiser step per minibatch of ``batches``; returns the mean loss and the samples seen."""
        ctx.model.train()
        total, seen = 0.0, 0  # a tensor on the device after the first step: reading it every step would sync a GPU
        for pieces in tqdm(batches, desc=desc, leave=False, disable=not ctx.progress):
            interrupts.check()  # a Ctrl-C that a finaliser swallowed still stops the run here
            loss, n = self.train_step(ctx, task, pieces)
            total = total + loss * n
            seen += n
        return float(total) / max(seen, 1), seen

    def train_step(self, ctx: Context, task: int, pieces: Minibatch) -> tuple[torch.Tensor, int]:
        """One optimiser step on the minibatch ``pieces``; returns its loss (detached) and size.

        The loss is the main loss (log-softmax + NLL of the class scores, or a plugin's criterion) plus the
        spike regulariser of the last hidden layer plus every plugin's term. A plugin may run the step under
        other dynamics (:meth:`Plugin.dynamics`) and learning rates (:meth:`Plugin.lr_factor`).
        """
        model, optimizer = ctx.model, ctx.optimizer
        scales = [s for s in (p.dynamics(ctx, pieces) for p in self.plugins.values()) if s is not None]
        if len(scales) > 1:
            raise ValueError(f"two plugins ask for other dynamics for one minibatch: {scales}")
        time_scale = scales[0] if scales else None
        lr_scale = math.prod(p.lr_factor(ctx, pieces) for p in self.plugins.values())
        dynamics = model.time_scaled(*time_scale) if time_scale is not None else nullcontext()
        with dynamics, scaled_lr(optimizer, lr_scale):
            if len(pieces) > 1:
                z = torch.cat([p.source.entry(p.idx) for p in pieces])
            else:
                z = pieces[0].source.entry(pieces[0].idx)
            y = torch.cat([p.source.labels[p.idx] for p in pieces])
            out, spikes = model.from_latent(z, self.entry_depth, return_spikes=True)
            scores = class_scores(out)
            batch = None
            if self.plugins:
                replayed = torch.cat([torch.full((len(p.idx),), p.replayed, device=y.device) for p in pieces])
                batch = Batch(z, y, replayed, spikes, self.entry_depth, list(pieces), time_scale)
            main = next((m for m in (p.criterion(ctx, batch, scores) for p in self.plugins.values())
                         if m is not None), None) if batch is not None else None
            if main is None:
                main = F.nll_loss(F.log_softmax(scores, dim=1), y)
            loss = main + ctx.reg(spikes)
            if batch is not None:
                for plugin in self.plugins.values():
                    term = plugin.loss(ctx, batch, scores)
                    if term is not None:
                        loss = loss + term
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._hook("after_backward", ctx, task)
            optimizer.step()
        return loss.detach(), len(y)

    # ------------------------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Every plugin's state, by name."""
        return {name: plugin.state_dict() for name, plugin in self.plugins.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore every plugin from :meth:`state_dict`."""
        for name, plugin_state in state.items():
            self.plugins[name].load_state_dict(plugin_state)


def hook_order(plugins: Mapping[str, Plugin], key: str) -> dict[str, Plugin]:
    """``plugins`` checked against each other's declarations (:mod:`spikecl.cl.plugin`) and in hook order:
    every plugin after those it follows, otherwise by stage, then class name, then config name."""
    for name, plugin in plugins.items():
        if not isinstance(plugin, Plugin):
            raise ConfigError(f"{key}.plugins.{name} is a {type(plugin).__name__}, not a spikecl.cl.Plugin; point "
                              "its _target_ at a subclass of spikecl.cl.Plugin")
    named = list(plugins.items())

    def label(name: str) -> str:
        return f"{key}.plugins.{name} ({type(plugins[name]).__name__})"

    for name, plugin in named:
        for kind in plugin.requires:
            if not any(isinstance(other, kind) for other in plugins.values()):
                raise ConfigError(f"{label(name)} needs a {kind.__name__} plugin in the same strategy; add one "
                                  f"(e.g. strategy=latent_replay) or remove {key}.plugins.{name}")
        for kind in plugin.excludes:
            for other_name, other in named:
                if other is not plugin and isinstance(other, kind):
                    raise ConfigError(f"{label(name)} cannot run with {label(other_name)}; remove one of them")
    replacing = sorted(name for name, plugin in named if plugin.replaces_criterion)  # the same line in any order
    if len(replacing) > 1:
        raise ConfigError(f"{label(replacing[0])} and {label(replacing[1])} both replace the loss; keep one")

    after = {name: {o for o, other in named if o != name and isinstance(other, plugin.follows)}
             for name, plugin in named}
    rank = {name: (plugin.stage, type(plugin).__qualname__, name) for name, plugin in named}
    order: list[str] = []
    while len(order) < len(named):
        ready = [n for n, _ in named if n not in order and after[n] <= set(order)]
        if not ready:
            cycle = sorted(n for n, _ in named if n not in order)
            raise ConfigError(f"{key}.plugins {', '.join(cycle)} each wait for another to run first; "
                              "their follows declarations form a circle")
        order.append(min(ready, key=rank.__getitem__))
    return {name: plugins[name] for name in order}


def check_finite(loss: float, trainable: Iterable[nn.Parameter], where: str, lr_key: str) -> None:
    """Stop with a clear message when the loss or a trained weight is NaN or infinite after ``where``."""
    bad = None if math.isfinite(loss) else f"the loss became {loss}"
    if bad is None and not all(bool(torch.isfinite(p).all()) for p in trainable):
        bad = "a trained weight became NaN or infinite"
    if bad is not None:
        raise TrainingDiverged(f"{bad} in {where}: training diverged; lower the learning rate ({lr_key}) and "
                               "run again (results written so far are kept)")


def frozen_except(model: nn.Module, trainable: Iterable[nn.Parameter]) -> None:
    """Make exactly ``trainable`` require gradients."""
    keep = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)


@contextmanager
def scaled_lr(optimizer: torch.optim.Optimizer, scale: float) -> Iterator[None]:
    """Every parameter group's learning rate times ``scale`` inside the block (nothing changes for 1)."""
    if scale == 1:
        yield
        return
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * scale
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr
