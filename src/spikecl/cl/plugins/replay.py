"""Replay of stored past samples: rehearsal (raw input) and latent replay (activity at the latent depth).

This plugin says *when* stored samples are replayed; *which* samples are stored is its storage policy's
choice (``policy``: :mod:`spikecl.cl.policies`), and *how* they are kept, time-compressed and bit-packed,
the storage's (:mod:`spikecl.cl.storage`). A task's train samples may join the buffer at the start of the
next task (the last task's are never needed), never a validation or test sample. Every epoch, ``mix``
says how replayed samples meet the new ones:

- ``sequential``: all new minibatches, then all replay minibatches (the paper);
- ``interleaved``: new and replay minibatches alternate;
- ``mixed``: every minibatch holds new and replayed samples in the ratio of their counts.

``replay_ratio`` says how many replayed samples an epoch holds: None replays the whole buffer every epoch
(the paper); r > 0 replays ceil(r * n_new) of them (at most the whole buffer), n_new being the epoch's new
samples, drawn afresh every epoch at random from the buffer (without repetition within the epoch). With
``mixed`` and r = 1 every minibatch is half new, half replayed, as experience replay with a memory
minibatch the size of the new one (Chaudhry et al. 2019, "On tiny episodic memories"); an epoch then costs
2 n_new samples instead of n_new + len(buffer), so more epochs fit in the same time.

A checkpoint needs nothing more than the buffer (samples, labels, ids) and ``stored_tasks``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Minibatch, Piece, minibatches
from spikecl.cl.plugin import Plugin
from spikecl.cl.policies import StoragePolicy
from spikecl.cl.sources import BufferSource
from spikecl.cl.storage import ReplayBuffer
from spikecl.errors import ConfigError
from spikecl.measure import compare_replay
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
        policy: which samples the buffer keeps (:mod:`spikecl.cl.policies`).
        mix: how replay meets the new data (see the module docstring).
        replay_ratio: None (the whole buffer every epoch) or replayed samples per new sample in each epoch.
    """

    stage = 10  # chooses the data the others train on

    def __init__(self, *, stores: str, policy: StoragePolicy, mix: str, replay_ratio: float | None) -> None:
        self.stores = checks.one_of("stores", stores, STORES)
        if not isinstance(policy, StoragePolicy):
            raise ConfigError(f"policy is a {type(policy).__name__}, not a spikecl.cl.policies.StoragePolicy; point "
                              "its _target_ at one (e.g. spikecl.cl.policies.ClassBalanced)")
        self.policy = policy
        self.mix = checks.one_of("mix", mix, MIXES)
        self.replay_ratio = None if replay_ratio is None else checks.number("replay_ratio", replay_ratio)
        self.buffer: ReplayBuffer | None = None
        self.stored_tasks = 0   # tasks 0 .. stored_tasks-1 have had their turn to join the buffer
        self.depth = 0          # the entry depth of the activity stored (set by before_task)
        self.source: BufferSource | None = None  # the buffer at that depth (set by before_task)

    def check(self, key: str, latent_depth: int | None, plugins: Sequence[Plugin]) -> None:
        if self.stores == "latent" and latent_depth is None:
            raise ConfigError(f"{key}.latent_depth=null is not valid with a latent replay plugin (it stores the "
                              "activity at that depth); choose a depth, or stores=raw (rehearsal)")

    # ------------------------------------------------------------------------------------------ hooks

    def before_task(self, ctx: Context, task: int) -> None:
        self.depth = ctx.entry_depth
        if self.buffer is None:
            self.policy.check(ctx.tasks)
            self.buffer = self._empty_buffer(ctx)
        elif self.buffer.device != ctx.device:  # restored from a checkpoint on the CPU
            self.buffer = ReplayBuffer.from_state_dict(self.buffer.state_dict(), ctx.device)
        for t in range(self.stored_tasks, task):
            self._store_task(ctx, t)
        self.stored_tasks = max(self.stored_tasks, task)
        self.source = BufferSource(self.buffer, ctx.model, ctx.entry_depth, raw_input=self.stores == "raw")

    def store_until(self, ctx: Context, task: int) -> None:
        """Let the train samples of every task up to ``task`` join the buffer now, for a plugin that needs
        them at the end of their task (GDumb, nearest class mean) rather than when the next one starts.
        The buffer ends the same either way: the policy's choice depends on the task and the seed, and the
        stored activity is the raw input or comes from the frozen layers below the depth."""
        for t in range(self.stored_tasks, task + 1):
            self._store_task(ctx, t)
        self.stored_tasks = max(self.stored_tasks, task + 1)

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        if self.source is None or len(self.source) == 0:
            return
        n_replay = None
        if self.replay_ratio is not None:
            n_new = sum(len(p.idx) for b in ctx.batches for p in b)
            n_replay = math.ceil(self.replay_ratio * n_new)
        ctx.batches = mix_in(ctx.batches, self.source, ctx.batch_size, self.mix, ctx.rng, n_replay)

    def figures(self, ctx: Context) -> dict[str, Any]:
        """The buffer's size (:meth:`ReplayBuffer.figures`), its compression, its policy, and what compression
        does to the replayed activity (latent buffers; up to 256 pretraining train samples)."""
        if self.buffer is None:
            return {}
        buf, spikes = self.buffer, ctx.data.spikes
        figures: dict[str, Any] = {
            "compression_ratio": buf.ratio, "codec": buf.codec, "policy": type(self.policy).__name__,
            "buffer_size": self.policy.capacity, "growth": self.policy.growth,
            **buf.figures(spikes.nb_steps * spikes.nb_units)}
        if self.stores == "latent":
            figures["stored_activity"] = {"depth": self.depth, "ratio": buf.ratio, "codec": buf.codec}
            x = spikes.csr(ctx.tasks[0].train[:256], device=ctx.device)
            figures["replay_activity"] = compare_replay(ctx.model, x, self.depth, [buf.ratio], [buf.codec],
                                                        spikes.nb_steps)
        return figures

    def state_dict(self) -> dict[str, Any]:
        return {"stored_tasks": self.stored_tasks, "depth": self.depth,
                "buffer": None if self.buffer is None else self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stored_tasks, self.depth = int(state["stored_tasks"]), int(state["depth"])
        # on the CPU until the next task moves it to the training device
        self.buffer = None if state["buffer"] is None else ReplayBuffer.from_state_dict(state["buffer"], "cpu")

    # ------------------------------------------------------------------------------------------ storage

    def _empty_buffer(self, ctx: Context) -> ReplayBuffer:
        c, steps, depth = ctx.compression, ctx.data.spikes.nb_steps, ctx.entry_depth
        if self.stores == "raw":
            kind, width = "counts", ctx.data.spikes.nb_units
        else:
            kind, width = ("current" if depth == 0 else "spikes"), ctx.model.latent_width(depth)
        return ReplayBuffer(kind, steps, width, c.ratio, c.codec_for(kind), current_dtype=c.current_dtype,
                            device=ctx.device)

    def _store_task(self, ctx: Context, task: int) -> None:
        """Let ``task``'s train samples join the buffer as the policy says."""
        admission = self.policy.admit(task, ctx.tasks, ctx.data.labels, self.buffer.sample_ids, ctx.seed)
        if len(admission.evict):
            self.buffer.remove(admission.evict)
        if not len(admission.add):
            return
        for start in range(0, len(admission.add), 256):  # bounded memory for the full-resolution activity
            part = admission.add[start:start + 256]
            self.buffer.add(self._activity(ctx, part), ctx.data.labels[part], part)
        log.info("buffer: %d samples, %d bytes stored (%.0f bytes/sample)", len(self.buffer), self.buffer.nbytes,
                 self.buffer.bytes_per_sample)

    @torch.inference_mode()
    def _activity(self, ctx: Context, indices: np.ndarray) -> torch.Tensor:
        """Full-resolution activity [n, T, W] of data-set samples ``indices``, as the buffer stores it."""
        spikes = ctx.data.spikes
        if self.stores == "raw":
            return spikes.dense(indices, device=ctx.device)
        return ctx.model.latent(spikes.csr(indices, device=ctx.device), ctx.entry_depth, spikes.nb_steps)


def mix_in(batches: list[Minibatch], replay: BufferSource, batch_size: int, mix: str,
           rng: np.random.Generator, n_replay: int | None = None) -> list[Minibatch]:
    """The epoch's minibatches of new data ``batches`` with replayed samples added as ``mix`` says.

    ``n_replay`` samples of the buffer are replayed (None or more than it holds: all of them), chosen and
    ordered afresh every epoch from ``rng``; ``mixed`` also redraws the new data's order, since its
    minibatches are cut to a different size.
    """
    new = batches[0][0].source if batches else None
    rep_idx = rng.permutation(len(replay))[:n_replay]
    if mix == "sequential":
        return batches + [[Piece(replay, b, True)] for b in minibatches(rep_idx, batch_size)]
    if mix == "interleaved":
        rep_b = [[Piece(replay, b, True)] for b in minibatches(rep_idx, batch_size)]
        out: list[Minibatch] = []
        for i in range(max(len(batches), len(rep_b))):
            out += batches[i:i + 1] + rep_b[i:i + 1]
        return out
    n_new = len(new) if new is not None else 0
    n_batches = math.ceil((n_new + len(replay)) / batch_size)
    new_parts = np.array_split(rng.permutation(n_new), n_batches)
    rep_parts = np.array_split(rep_idx, n_batches)
    return [[p for p in (Piece(new, a), Piece(replay, b, True)) if len(p.idx)] for a, b in zip(new_parts, rep_parts)]
