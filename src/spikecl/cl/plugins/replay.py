"""Replay of stored past samples: rehearsal (raw input) and latent replay (activity at the latent depth).

The buffer (:class:`~spikecl.cl.buffer.ReplayBuffer`) is filled from *train* portions only, never from
test samples: before the first continual-learning task, ``buffer_size`` samples of the pretraining task
chosen by ``selection``; before each later task, ``replay_per_new_class`` samples of the task just learned
(the progressive split's growth; the last task's samples are never needed). Every epoch, ``mix`` says how
replayed samples meet the new ones:

- ``sequential``: all new minibatches, then all replay minibatches (the paper);
- ``interleaved``: new and replay minibatches alternate;
- ``mixed``: every minibatch holds new and replayed samples in the ratio of their counts.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from spikecl.cl.buffer import SELECTIONS, ReplayBuffer, select_samples
from spikecl.cl.context import Context
from spikecl.cl.plugin import Plugin
from spikecl.cl.sources import BufferSource
from spikecl.engine import Part, minibatches
from spikecl.utils import checks

log = logging.getLogger(__name__)

MIXES = ("sequential", "interleaved", "mixed")
STORES = ("latent", "raw")


class Replay(Plugin):
    """Store past samples and replay them with the new data.

    Args:
        stores: ``latent`` (the activity at the strategy's latent depth: input currents at 0, spikes of
            hidden layer d at d) or ``raw`` (the input spike counts, run through every trainable layer:
            rehearsal).
        buffer_size: samples of the pretraining task to store.
        replay_per_new_class: samples of each learned task to add before the next one.
        selection: ``class_balanced``, ``random`` or ``first`` (the paper's "first k batches").
        mix: how replay meets the new data (see the module docstring).
    """

    def __init__(self, stores: str = "latent", buffer_size: int = 1280, replay_per_new_class: int = 0,
                 selection: str = "class_balanced", mix: str = "sequential") -> None:
        self.stores = checks.one_of("stores", stores, STORES)
        self.buffer_size = checks.integer("buffer_size", buffer_size, 0)
        self.replay_per_new_class = checks.integer("replay_per_new_class", replay_per_new_class, 0)
        self.selection = checks.one_of("selection", selection, SELECTIONS)
        self.mix = checks.one_of("mix", mix, MIXES)
        self.buffer: ReplayBuffer | None = None
        self.stored_tasks = 0   # tasks 0 .. stored_tasks-1 have had their turn to join the buffer
        self._source: BufferSource | None = None

    # ------------------------------------------------------------------------------------------ hooks

    def before_task(self, ctx: Context, task: int) -> None:
        if self.buffer is None:
            self.buffer = self._empty_buffer(ctx)
        for t in range(self.stored_tasks, task):
            self._store_task(ctx, t)
        self.stored_tasks = max(self.stored_tasks, task)
        depth = ctx.strategy.depth
        self._source = BufferSource(self.buffer, ctx.model, depth, raw_input=self.stores == "raw")

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        if self._source is None or len(self._source) == 0:
            return
        ctx.batches = mix_in(ctx.batches, self._source, ctx.strategy.batch_size, self.mix, ctx.rng)

    def state_dict(self) -> dict[str, Any]:
        return {"stored_tasks": self.stored_tasks, "buffer": None if self.buffer is None else self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stored_tasks = int(state["stored_tasks"])
        if state["buffer"] is not None:
            self.buffer = ReplayBuffer.from_state_dict(state["buffer"])

    # ------------------------------------------------------------------------------------------ storage

    def _empty_buffer(self, ctx: Context) -> ReplayBuffer:
        c, steps, depth = ctx.compression, ctx.data.spikes.nb_steps, ctx.strategy.depth
        if self.stores == "raw":
            kind, width = "counts", ctx.data.spikes.nb_units
        else:
            kind, width = ("current" if depth == 0 else "spikes"), ctx.model.latent_width(depth)
        return ReplayBuffer(kind, steps, width, c.ratio, c.codec_for(kind), current_dtype=c.current_dtype,
                            device=ctx.device)

    def _store_task(self, ctx: Context, task: int) -> None:
        """Task 0's ``buffer_size`` samples, or a learned task's ``replay_per_new_class``."""
        size = self.buffer_size if task == 0 else self.replay_per_new_class
        pool = ctx.tasks[task].train
        if size == 0:
            return
        if task == 0 and size > len(pool):
            log.info("buffer_size=%d exceeds the %d pretraining train samples: storing all of them", size, len(pool))
        # Selection streams of 0.1: [seed, 1] for the pretraining samples, [seed, 3, task] for learned tasks.
        rng = np.random.default_rng([ctx.seed, 1] if task == 0 else [ctx.seed, 3, task])
        chosen = select_samples(ctx.data.labels, pool, size, self.selection, rng)
        for start in range(0, len(chosen), 256):  # bounded memory for the full-resolution activity
            part = chosen[start:start + 256]
            self.buffer.add(self._activity(ctx, part), ctx.data.labels[part], part)
        log.info("buffer: %d samples, %d bytes stored (%.0f bytes/sample)", len(self.buffer), self.buffer.nbytes,
                 self.buffer.bytes_per_sample)

    @torch.inference_mode()
    def _activity(self, ctx: Context, indices: np.ndarray) -> torch.Tensor:
        """Full-resolution activity [n, T, W] of data-set samples ``indices``, as the buffer stores it."""
        spikes = ctx.data.spikes
        if self.stores == "raw":
            return spikes.dense(indices, device=ctx.device)
        return ctx.model.latent(spikes.csr(indices, device=ctx.device), ctx.strategy.depth, spikes.nb_steps)


def mix_in(batches: list[list[Part]], replay: BufferSource, batch_size: int, mix: str,
           rng: np.random.Generator) -> list[list[Part]]:
    """The epoch's minibatches of new data ``batches`` with the replayed samples added as ``mix`` says.

    The order within the buffer is reshuffled every epoch from ``rng``; ``mixed`` also redraws the new
    data's order, since its minibatches are cut to a different size.
    """
    new = batches[0][0].source if batches else None
    rep_idx = rng.permutation(len(replay))
    if mix == "sequential":
        return batches + [[Part(replay, b, True)] for b in minibatches(rep_idx, batch_size)]
    if mix == "interleaved":
        rep_b = [[Part(replay, b, True)] for b in minibatches(rep_idx, batch_size)]
        out: list[list[Part]] = []
        for i in range(max(len(batches), len(rep_b))):
            out += batches[i:i + 1] + rep_b[i:i + 1]
        return out
    n_new = len(new) if new is not None else 0
    n_batches = math.ceil((n_new + len(replay)) / batch_size)
    new_parts = np.array_split(rng.permutation(n_new), n_batches)
    rep_parts = np.array_split(rep_idx, n_batches)
    return [[p for p in (Part(new, a), Part(replay, b, True)) if len(p.idx)] for a, b in zip(new_parts, rep_parts)]
