"""Consolidation phase: a few epochs of replay after every task, without the new data's pull (the "sleep" phase).

After the last epoch of task t (``after_task``), ``epochs`` more epochs train the task's trainable
parameters on the samples of the :class:`~spikecl.cl.plugins.replay.Replay` plugin's buffer, as the sleep
phase of sleep-enhanced latent replay: the network, just fitted to the new data, rehearses what it stored
of the old classes in class-balanced minibatches. With ``include_new`` (the default) the task's own train
samples (``ctx.new``, without noise) join the phase as one more class of the balanced minibatches, so the
class just learned is rehearsed too; ``include_new=false`` is the buffer alone. The buffer alone teaches
the network that the new class never occurs: on the embedded data (progressive split, 3 new classes, 5
epochs each, 2 consolidation epochs) it raised the old classes' final accuracy from 0.60 to 0.70 but
brought every new class to 0 right after it was learned, while with the new samples the old classes end
at 0.66 and the new ones at 0.27 (plain latent replay: 0.60 and 0.24).

The phase is a :class:`~spikecl.cl.plugin.Phase` that the loop runs after the task's epochs and before
any ``after_task`` hook: the same loss, the same optimiser (the task's, its state kept; every learning rate
times ``lr_scale`` during the phase), the task's trainable parameters and every plugin's ``criterion``,
``loss`` and ``after_backward`` hooks (an EWC, SI or LwF term keeps acting; SI also integrates the phase's
path; LwF's teacher is still there), whatever the order of the plugins. The minibatches are
**class-balanced**: with K classes in the phase and m the largest class's count, every class contributes m
samples per epoch (a smaller class repeats its samples, each pass in a fresh random order), laid out in rows
of one sample of every class (classes in a random order within a row) and cut into minibatches of
``strategy.batch_size``, so every minibatch holds each class floor or ceil(B / K) times. The plan's order
draws from the stream ``consolidation_order`` (:mod:`spikecl.utils.streams`).

Noise on the replayed activity (the stored activity, before it enters: decoded spikes at depth >= 1, the
input current at 0, raw input counts for rehearsal) with a generator of the stream ``replay_noise``:

- ``none``: as stored;
- ``dropout``: every stored spike is dropped with probability ``p`` (a count of c spikes keeps
  Binomial(c, 1 - p) of them; an input current value, which is not made of spikes, is zeroed with
  probability ``p``);
- ``jitter``: every nonzero stored entry (a spike, a count, a current value) moves by an offset drawn
  uniformly from -``jitter`` .. ``jitter`` steps, clipped to the sample's steps; entries that meet at one
  step add up, and a neuron's spikes that meet count once (stored spikes stay 0/1).

Replay stores a task's samples lazily, at the next ``before_task``, so during the phase its buffer still
holds the earlier tasks' samples only (the new task's come from ``ctx.new``, all of them, with
``include_new``). Replay is at full resolution even with
:class:`~spikecl.cl.plugins.short_replay.ShortTimeReplay`. Every ``after_task`` hook (EWC's Fisher, for
instance) and the evaluation after the task see the consolidated weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Minibatch, Piece, Source, minibatches
from spikecl.cl.plugin import Phase, Plugin
from spikecl.cl.plugins.replay import Replay
from spikecl.cl.sources import BufferSource
from spikecl.errors import ConfigError
from spikecl.utils import checks, streams

NOISES = ("none", "dropout", "jitter")


def spike_dropout(z: Tensor, p: float, kind: str, generator: torch.Generator) -> Tensor:
    """Drop every spike of ``z`` [B, T, W] with probability ``p`` (see the module docstring)."""
    if kind == "counts":
        return torch.binomial(z.float(), torch.full_like(z, 1.0 - p, dtype=torch.float32), generator=generator)
    keep = torch.rand(z.shape, generator=generator, device=z.device) >= p
    return z * keep


def spike_jitter(z: Tensor, jitter: int, kind: str, generator: torch.Generator) -> Tensor:
    """Move every nonzero entry of ``z`` [B, T, W] by up to ``jitter`` steps (see the module docstring)."""
    b, t, w = z.nonzero(as_tuple=True)
    shift = torch.randint(-jitter, jitter + 1, t.shape, generator=generator, device=z.device)
    out = torch.zeros_like(z, dtype=torch.float32)
    out.index_put_((b, (t + shift).clamp_(0, z.shape[1] - 1), w), z[b, t, w].float(), accumulate=True)
    return out.clamp_(max=1.0) if kind == "spikes" else out


class NoisyReplay:
    """A buffer source whose stored activity is perturbed before it enters (a thin wrapper of
    :class:`~spikecl.cl.sources.BufferSource`); one generator serves the epoch's minibatches in order."""

    def __init__(self, source: BufferSource, noise: str, p: float, jitter: int, generator: torch.Generator) -> None:
        self.source, self.noise, self.p, self.jitter, self.generator = source, noise, p, jitter, generator

    @property
    def labels(self) -> Tensor:
        return self.source.labels

    def __len__(self) -> int:
        return len(self.source)

    def entry(self, idx: np.ndarray) -> Tensor:
        z, kind = self.source.activity(idx), self.source.buffer.kind
        if self.noise == "dropout":
            z = spike_dropout(z, self.p, kind, self.generator)
        elif self.noise == "jitter":
            z = spike_jitter(z, self.jitter, kind, self.generator)
        return self.source.enter(z)


def balanced_plan(parts: list[tuple[Source, bool]], batch_size: int, rng: np.random.Generator) -> list[Minibatch]:
    """Class-balanced minibatches over every sample of the ``(source, replayed)`` pairs (module docstring)."""
    labels = np.concatenate([src.labels.cpu().numpy() for src, _ in parts])
    owner = np.concatenate([np.full(len(src), k) for k, (src, _) in enumerate(parts)])
    local = np.concatenate([np.arange(len(src)) for src, _ in parts])
    classes, counts = np.unique(labels, return_counts=True)
    if not classes.size:
        return []
    m = int(counts.max())
    columns = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        passes = [rng.permutation(members) for _ in range(math.ceil(m / members.size))]
        columns.append(np.concatenate(passes)[:m])
    grid = np.stack(columns, axis=1)  # [m, K]: row r holds the r-th sample of every class
    grid = np.take_along_axis(grid, np.argsort(rng.random(grid.shape), axis=1), axis=1)
    plan = []
    for b in minibatches(grid.reshape(-1), batch_size):
        plan.append([Piece(parts[k][0], local[b[owner[b] == k]], parts[k][1]) for k in range(len(parts))
                     if (owner[b] == k).any()])
    return plan


class Consolidation(Plugin):
    """Train on the replay buffer after every task (see the module docstring).

    Args:
        epochs: epochs of the phase (0: none).
        lr_scale: the phase's learning rates are the task's times this.
        noise: ``none``, ``dropout`` or ``jitter``, on the replayed activity.
        p: the dropout probability of a spike.
        jitter: the largest shift of a spike, in steps.
        include_new: also rehearse the task's own train samples (without noise); false: the buffer alone.
    """

    requires = (Replay,)

    def __init__(self, *, epochs: int, lr_scale: float, noise: str, p: float, jitter: int, include_new: bool) -> None:
        self.epochs = checks.integer("epochs", epochs, 0)
        self.lr_scale = checks.number("lr_scale", lr_scale)
        self.noise = checks.one_of("noise", noise, NOISES)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ConfigError(f"p={p!r} is not valid; it must be in [0, 1), e.g. 0.1")
        self.p = float(p)
        self.jitter = checks.integer("jitter", jitter, 0)
        self.include_new = checks.boolean("include_new", include_new)

    def phases(self, ctx: Context, task: int) -> list[Phase]:
        source = ctx.plugin(Replay).source
        if self.epochs == 0 or source is None or len(source) == 0:
            return []
        return [Phase("consolidation", self.epochs, lambda epoch: self._plan(ctx, task, source, epoch), self.lr_scale)]

    def _plan(self, ctx: Context, task: int, source: BufferSource, epoch: int) -> list[Minibatch]:
        """The class-balanced minibatches of one epoch of the phase (noisy replay, the task's own samples)."""
        replayed = source
        if self.noise != "none":
            replayed = NoisyReplay(source, self.noise, self.p, self.jitter,
                                   streams.replay_noise(ctx.seed, task, epoch, ctx.device))
        parts: list[tuple[Source, bool]] = [(replayed, True)]
        if self.include_new and ctx.new is not None and len(ctx.new):
            parts.append((ctx.new, False))
        return balanced_plan(parts, ctx.batch_size, streams.consolidation_order(ctx.seed, task, epoch))
