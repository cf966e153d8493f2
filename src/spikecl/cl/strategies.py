"""Continual-learning strategies: one loop with hooks, and three short strategies on top of it.

The loop (:meth:`Strategy.learn`) trains one task: a fresh optimiser over the layers above
``latent_depth``, ``epochs`` passes over the new data and the replay buffer (interleaved as ``mix`` says),
an evaluation after every epoch. Strategies differ only in what their buffer stores:

- :class:`Naive`: nothing (the forgetting baseline);
- :class:`Rehearsal`: raw input spike counts of past samples, run through every layer when replayed;
- :class:`LatentReplay`: the activity at ``latent_depth`` of past samples, replayed into the layers above.

``latent_depth`` (None or 0..L) is where training starts: the layers below are frozen, and the new data's
activity there is computed once per task. Uncompressed latent replay is therefore exactly rehearsal of the
same samples through the same frozen layers (seed-spec 3.0), only cheaper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from tqdm.auto import tqdm

from spikecl.cl.buffer import ReplayBuffer, select_samples
from spikecl.cl.sources import BufferSource, CachedLatents, RawSource
from spikecl.data import SpikeDataset, Task
from spikecl.engine import Source, Timer, check_finite, frozen_except, plan_epoch, train_epoch
from spikecl.models.lif import RSNN

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a strategy works with: the model, the data and its tasks, and how to report an epoch."""

    model: RSNN
    data: SpikeDataset
    tasks: list[Task]
    device: torch.device
    compression: dict          # ratio, codec, input_codec, current_dtype
    seed: int
    on_epoch: Callable[[int, int, float], None]   # (task index, epoch, mean training loss)
    reg: tuple[float, float] = (0.0, 0.0)
    progress: bool = False
    timer: Timer | None = None


class Strategy:
    """The CL loop. Subclasses say what the buffer stores (:meth:`make_buffer`, :meth:`activity`)."""

    def __init__(self, *, name: str, latent_depth: int | None, epochs: int, lr: float, batch_size: int,
                 buffer_size: int, selection: str, mix: str, replay_per_new_class: int,
                 reinit_new_class_readout: bool, optimizer: Callable[..., torch.optim.Optimizer]) -> None:
        self.name, self.latent_depth, self.epochs, self.lr = name, latent_depth, int(epochs), float(lr)
        self.batch_size, self.buffer_size, self.selection, self.mix = int(batch_size), int(buffer_size), selection, mix
        self.replay_per_new_class = int(replay_per_new_class)
        self.reinit_new_class_readout = reinit_new_class_readout
        self.optimizer = optimizer
        self.buffer: ReplayBuffer | None = None

    @property
    def depth(self) -> int:
        """Depth of the entry activity: 0 (input current) when nothing is frozen."""
        return 0 if self.latent_depth is None else self.latent_depth

    # ---------------------------------------------------------------------------------------- hooks

    def make_buffer(self, ctx: Context) -> ReplayBuffer | None:
        """An empty buffer for what this strategy stores (None: no replay)."""
        return None

    def activity(self, ctx: Context, indices: np.ndarray) -> torch.Tensor:
        """Full-resolution activity [n, T, W] of data-set samples ``indices`` to store in the buffer."""
        raise NotImplementedError

    def replay_source(self, ctx: Context) -> Source | None:
        """The buffer as a training source."""
        return None

    # ----------------------------------------------------------------------------------------- loop

    def setup(self, ctx: Context) -> None:
        """Fill the buffer from the pretraining task's *train* portion (never its test samples)."""
        self.buffer = self.make_buffer(ctx)
        if self.buffer is None or self.buffer_size == 0:
            return
        pool = ctx.tasks[0].train
        if self.buffer_size > len(pool):
            log.info("strategy.buffer_size=%d exceeds the %d pretraining train samples: storing all of them",
                     self.buffer_size, len(pool))
        rng = np.random.default_rng([ctx.seed, 1])
        chosen = select_samples(ctx.data.labels, pool, self.buffer_size, self.selection, rng)
        self._store(ctx, chosen)

    def learn(self, ctx: Context, task_index: int) -> None:
        """Train on task ``task_index`` (>= 1) with replay, evaluating after every epoch."""
        task, model = ctx.tasks[task_index], ctx.model
        self.before_task(ctx, task_index)
        trainable = model.layer_parameters(self.latent_depth)
        frozen_except(model, trainable)
        if self.latent_depth is None:
            new: Source = RawSource(model, ctx.data.spikes, task.train, ctx.data.labels, 0, ctx.device)
        else:
            new = CachedLatents(model, ctx.data.spikes, task.train, ctx.data.labels, self.depth, ctx.device)
        replay = self.replay_source(ctx)
        optimizer = self.optimizer(trainable)  # fresh for every task, as the paper
        rng = np.random.default_rng([ctx.seed, 2, task_index])
        timer = ctx.timer or Timer()
        for epoch in tqdm(range(1, self.epochs + 1), desc=f"task {task_index} ({task.name})", unit="epoch",
                          disable=not ctx.progress):
            batches = plan_epoch(new, replay, self.batch_size, self.mix, rng)
            loss = timer.run(partial(train_epoch, model, optimizer, batches, self.depth, ctx.reg, ctx.progress,
                                     f"task {task_index} epoch {epoch}"))
            check_finite(loss, "cl", task_index, epoch, "strategy.lr")
            ctx.on_epoch(task_index, epoch, loss)
        frozen_except(model, model.parameters())
        self.after_task(ctx, task_index)

    def before_task(self, ctx: Context, task_index: int) -> None:
        """A class never seen in pretraining gets a fresh readout column ~ N(0.003, 0.003), as the paper."""
        if not self.reinit_new_class_readout:
            return
        seen = set(ctx.tasks[0].classes)
        new_classes = [c for c in ctx.tasks[task_index].classes if c not in seen]
        if new_classes:
            gen = torch.Generator().manual_seed(ctx.seed * 1000 + task_index)
            with torch.no_grad():
                for c in new_classes:
                    col = torch.empty(ctx.model.w_out.shape[0]).normal_(0.003, 0.003, generator=gen)
                    ctx.model.w_out[:, c] = col.to(ctx.model.w_out.device)

    def after_task(self, ctx: Context, task_index: int) -> None:
        """Progressive split: some train samples of the class just learned join the buffer."""
        if self.buffer is None or self.replay_per_new_class == 0 or task_index == len(ctx.tasks) - 1:
            return
        rng = np.random.default_rng([ctx.seed, 3, task_index])
        chosen = select_samples(ctx.data.labels, ctx.tasks[task_index].train, self.replay_per_new_class,
                                self.selection, rng)
        self._store(ctx, chosen)

    def _store(self, ctx: Context, indices: np.ndarray) -> None:
        for start in range(0, len(indices), 256):  # bounded memory for the full-resolution activity
            part = indices[start:start + 256]
            self.buffer.add(self.activity(ctx, part), ctx.data.labels[part], part)
        log.info("buffer: %d samples, %d bytes stored (%.0f bytes/sample)", len(self.buffer), self.buffer.nbytes,
                 self.buffer.bytes_per_sample)


class Naive(Strategy):
    """Fine-tune on the new data only (seed-spec 3.1, 3.4)."""


class Rehearsal(Strategy):
    """Replay raw input spike counts of past samples, time-compressed with ``compression.input_codec``."""

    def make_buffer(self, ctx: Context) -> ReplayBuffer:
        c, spikes = ctx.compression, ctx.data.spikes
        return ReplayBuffer("counts", spikes.nb_steps, spikes.nb_units, c["ratio"], c["input_codec"],
                            device=ctx.device)

    def activity(self, ctx: Context, indices: np.ndarray) -> torch.Tensor:
        return ctx.data.spikes.dense(indices, device=ctx.device)

    def replay_source(self, ctx: Context) -> Source:
        return BufferSource(self.buffer, ctx.model, self.depth, raw_input=True)


class LatentReplay(Strategy):
    """Replay the stored activity at ``latent_depth`` (input currents at 0, spikes of layer d at d >= 1)."""

    def make_buffer(self, ctx: Context) -> ReplayBuffer:
        c, width = ctx.compression, ctx.model.latent_width(self.depth)
        if self.depth == 0:
            return ReplayBuffer("current", ctx.data.spikes.nb_steps, width, c["ratio"], "sum_impulse",
                                current_dtype=c["current_dtype"], device=ctx.device)
        return ReplayBuffer("spikes", ctx.data.spikes.nb_steps, width, c["ratio"], c["codec"], device=ctx.device)

    @torch.inference_mode()
    def activity(self, ctx: Context, indices: np.ndarray) -> torch.Tensor:
        spikes = ctx.data.spikes
        return ctx.model.latent(spikes.csr(indices, device=ctx.device), self.depth, spikes.nb_steps)

    def replay_source(self, ctx: Context) -> Source:
        return BufferSource(self.buffer, ctx.model, self.depth, raw_input=False)
