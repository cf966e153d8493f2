"""Replay of stored past samples: rehearsal (raw input) and latent replay (activity at the latent depth).

The buffer (:class:`~spikecl.cl.buffer.ReplayBuffer`) is filled from *train* portions only, never from
test samples: before the first continual-learning task, ``buffer_size`` samples of the pretraining task
chosen by ``selection``; before each later task, ``replay_per_new_class`` samples of the task just learned
(the progressive split's growth; the last task's samples are never needed). Every epoch, ``mix`` says how
replayed samples meet the new ones:

- ``sequential``: all new minibatches, then all replay minibatches (the paper);
- ``interleaved``: new and replay minibatches alternate;
- ``mixed``: every minibatch holds new and replayed samples in the ratio of their counts.

``replay_ratio`` says how many replayed samples an epoch holds: None replays the whole buffer every epoch
(the paper); r > 0 replays ceil(r * n_new) of them (at most the whole buffer), n_new being the epoch's new
samples, drawn afresh every epoch at random from the buffer (without repetition within the epoch). With
``mixed`` and r = 1 every minibatch is half new, half replayed, as experience replay with a memory
minibatch the size of the new one (Chaudhry et al. 2019, "On tiny episodic memories"); an epoch then costs
2 n_new samples instead of n_new + len(buffer), so more epochs fit in the same time.

**A buffer of fixed total size** (``capacity``: None keeps the growth above). With ``capacity = N`` the
buffer holds at most N samples, shared class-balanced over every class seen so far: after the samples of
tasks 0..t joined it, each of the K classes of their train portions holds floor(N / K) or ceil(N / K)
samples (fewer only where a class has fewer train samples; their places go to the other classes), and
``buffer_size`` and ``replay_per_new_class`` are not used. When task t's samples join (lazily, at the start
of task t+1, as always), with share s = floor(N / K):

- a class new to the buffer brings s of its train samples, or s + 1 where one of the N - s K places of
  one more sample falls on it (the places are drawn among the K classes at random), chosen by
  ``select_samples(..., "class_balanced")`` over the task's new classes (a class with fewer gives all it
  has, the rest goes to the task's other new classes);
- a class already stored (a task with new samples of known classes, as in the sample-incremental split)
  brings round(s * n_t / (n_<t + n_t)) samples, n_t being its train samples in task t and n_<t those in the
  earlier tasks, drawn at random: every train sample of the class seen so far then has about the same
  chance to be in the buffer (as reservoir sampling would give);
- then :func:`~spikecl.cl.buffer.balanced_eviction` evicts stored samples, at random within a class, from
  the largest classes only, down to the common level, and the incoming ones are added.

The pretraining task stores its share too: s = floor(N / K_0) samples of each of its K_0 classes, N in all.
Eviction draws from the stream [seed, 4, t]; the selection streams are those of the growing buffer.
Only ``tasks[t].train`` samples are eligible, never validation or test ones. ``capacity`` must be at
least the number of classes of the experiment (every class needs a place); this is checked before the
first task. A checkpoint needs nothing more than the buffer (samples, labels, ids) and ``stored_tasks``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

import numpy as np
import torch

from spikecl.cl.buffer import SELECTIONS, ReplayBuffer, balanced_eviction, select_samples
from spikecl.cl.context import Context
from spikecl.cl.plugin import Plugin
from spikecl.cl.sources import BufferSource
from spikecl.engine import Part, minibatches
from spikecl.errors import ConfigError
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
        capacity: None (the buffer grows by ``buffer_size`` then ``replay_per_new_class`` per task), or the
            fixed total number of samples, shared class-balanced over the classes seen so far (see the module
            docstring; ``buffer_size`` and ``replay_per_new_class`` are then not used).
        replay_ratio: None (the whole buffer every epoch) or replayed samples per new sample in each epoch.
    """

    def __init__(self, stores: str = "latent", buffer_size: int = 1280, replay_per_new_class: int = 0,
                 selection: str = "class_balanced", mix: str = "sequential", capacity: int | None = None,
                 replay_ratio: float | None = None) -> None:
        self.stores = checks.one_of("stores", stores, STORES)
        self.buffer_size = checks.integer("buffer_size", buffer_size, 0)
        self.replay_per_new_class = checks.integer("replay_per_new_class", replay_per_new_class, 0)
        self.selection = checks.one_of("selection", selection, SELECTIONS)
        self.mix = checks.one_of("mix", mix, MIXES)
        self.capacity = None if capacity is None else checks.integer("capacity", capacity, 1)
        self.replay_ratio = None if replay_ratio is None else checks.number("replay_ratio", replay_ratio)
        self.buffer: ReplayBuffer | None = None
        self.stored_tasks = 0   # tasks 0 .. stored_tasks-1 have had their turn to join the buffer
        self._source: BufferSource | None = None
        self._restored: dict | None = None  # a checkpoint's buffer, until the next task

    # ------------------------------------------------------------------------------------------ hooks

    def before_task(self, ctx: Context, task: int) -> None:
        if self.buffer is None and self._restored is not None:
            self.buffer, self._restored = ReplayBuffer.from_state_dict(self._restored, ctx.device), None
        if self.buffer is None:
            self.buffer = self._empty_buffer(ctx)
            if self.capacity is not None:
                classes = set().union(*(t.classes for t in ctx.tasks))
                if self.capacity < len(classes):
                    raise ConfigError(f"capacity={self.capacity} is less than the {len(classes)} classes of the "
                                      "experiment; every class needs at least one place in the buffer")
        for t in range(self.stored_tasks, task):
            self._store_task(ctx, t)
        self.stored_tasks = max(self.stored_tasks, task)
        depth = ctx.strategy.depth
        self._source = BufferSource(self.buffer, ctx.model, depth, raw_input=self.stores == "raw")

    @property
    def source(self) -> BufferSource | None:
        """The buffer as a training source at the task's depth (set by ``before_task``; None before)."""
        return self._source

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        if self._source is None or len(self._source) == 0:
            return
        n_replay = None
        if self.replay_ratio is not None:
            n_new = sum(len(p.idx) for b in ctx.batches for p in b)
            n_replay = math.ceil(self.replay_ratio * n_new)
        ctx.batches = mix_in(ctx.batches, self._source, ctx.strategy.batch_size, self.mix, ctx.rng, n_replay)

    def state_dict(self) -> dict[str, Any]:
        return {"stored_tasks": self.stored_tasks, "buffer": None if self.buffer is None else self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stored_tasks = int(state["stored_tasks"])
        self.buffer = None
        self._restored = state["buffer"]  # rebuilt on the task's device at the next before_task

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
        if self.capacity is not None:
            self._store_balanced(ctx, task)
            return
        size = self.buffer_size if task == 0 else self.replay_per_new_class
        pool = ctx.tasks[task].train
        if size == 0:
            return
        if task == 0 and size > len(pool):
            log.info("buffer_size=%d exceeds the %d pretraining train samples: storing all of them", size, len(pool))
        # Selection streams of 0.1: [seed, 1] for the pretraining samples, [seed, 3, task] for learned tasks.
        rng = np.random.default_rng([ctx.seed, 1] if task == 0 else [ctx.seed, 3, task])
        chosen = select_samples(ctx.data.labels, pool, size, self.selection, rng)
        self._add(ctx, chosen)

    def _store_balanced(self, ctx: Context, task: int) -> None:
        """Task ``task``'s share of a buffer of ``capacity`` samples, evicting from the largest classes."""
        labels = np.asarray(ctx.data.labels)
        pool = np.asarray(ctx.tasks[task].train, dtype=np.int64)
        earlier = np.concatenate([np.asarray(ctx.tasks[t].train, dtype=np.int64) for t in range(task)] or
                                 [np.zeros(0, dtype=np.int64)])
        before = Counter(labels[earlier].tolist())
        pool_labels = labels[pool]
        seen = np.union1d(labels[earlier], pool_labels)
        if not len(pool):
            return
        share = self.capacity // len(seen)
        rng = np.random.default_rng([ctx.seed, 1] if task == 0 else [ctx.seed, 3, task])
        fresh = np.isin(pool_labels, [c for c in np.unique(pool_labels) if before[int(c)] == 0])
        n_fresh = len(np.unique(pool_labels[fresh]))
        # The capacity % classes places of one more sample fall on classes drawn at random: those that fall
        # on new classes come with them, eviction gives the others to stored classes.
        spare = self.capacity - share * len(seen)
        spare_new = int(rng.hypergeometric(n_fresh, len(seen) - n_fresh, spare)) if spare and n_fresh else 0
        parts = [select_samples(labels, pool[fresh], share * n_fresh + spare_new, "class_balanced", rng)]
        for c in np.unique(pool_labels[~fresh]):  # classes already stored: a reservoir-like share
            members = pool[pool_labels == c]
            quota = round(share * len(members) / (before[int(c)] + len(members)))
            parts.append(select_samples(labels, members, quota, "class_balanced", rng))
        chosen = np.sort(np.concatenate(parts))
        incoming = Counter(labels[chosen].tolist())
        evict = balanced_eviction(self.buffer.labels.cpu().numpy(), self.capacity, incoming,
                                  np.random.default_rng([ctx.seed, 4, task]))
        if len(evict):
            self.buffer.remove(evict)
        self._add(ctx, chosen)

    def _add(self, ctx: Context, chosen: np.ndarray) -> None:
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
           rng: np.random.Generator, n_replay: int | None = None) -> list[list[Part]]:
    """The epoch's minibatches of new data ``batches`` with replayed samples added as ``mix`` says.

    ``n_replay`` samples of the buffer are replayed (None or more than it holds: all of them), chosen and
    ordered afresh every epoch from ``rng``; ``mixed`` also redraws the new data's order, since its
    minibatches are cut to a different size.
    """
    new = batches[0][0].source if batches else None
    rep_idx = rng.permutation(len(replay))[:n_replay]
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
