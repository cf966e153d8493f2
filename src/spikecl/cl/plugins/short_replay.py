"""Short-time replay (after Replay4NCL, DAC 2025): replay the stored activity at T / r steps, undecoded.

A buffer compressed 1:r (``compression.ratio``) stores one step per window of r steps. Plain replay decodes
it back to T steps; short-time replay runs the trained layers on the T / r stored steps as they are (bool
spikes for ``or_impulse``; the window's spike count, or its sum for ``sum_impulse``, as the input of that
step otherwise), with the time constants adapted so that one step decays as much as r steps did:

    alpha' = alpha^r,   beta' = beta^r,   threshold' = threshold_scale * threshold,

in every LIF layer above the depth and in the readout (whose kernel is built for T / r steps with alpha',
beta'), through the model's ``time_scaled``. The LIF equations of the model are otherwise
unchanged, step for step:

    syn[t+1] = alpha' * syn[t] + h[t],   mem[t+1] = (beta' * mem[t] + syn[t]) * (1 - s[t]),
    s[t] = H(mem[t] - threshold'),       t = 0 .. T / r - 1.

The class score is still the maximum of the readout record over its T / r + 1 entries. Each step now
carries up to r steps' input while the membrane integrates r times fewer steps, so activity above the
depth changes: ``threshold_scale`` (< 1 lowers the threshold) is the knob Replay4NCL adapts, 1 by default.
Replay costs r times fewer time steps per sample and no decompression. New data and evaluation run at
full resolution with the model's own constants; only replayed minibatches are short.

Replayed minibatches run at their own time resolution, so they must be minibatches of their own: the
Replay plugin's ``mix`` must be ``sequential`` or ``interleaved`` (``mixed`` is refused when the strategy
is built). The plugin follows the Replay plugin (its ``before_epoch`` rewrites the epoch's plan after
Replay's) so that the replayed pieces read the buffer's *encoded* activity
(:class:`~spikecl.cl.sources.BufferSource` with ``encoded=True``). For those minibatches it gives the loop
the dynamics (:meth:`~spikecl.cl.plugin.Plugin.dynamics`: the model runs under
``time_scaled(r, threshold_scale)``, and so does any teacher model a plugin runs on the same batch) and a
learning-rate factor ``lr_scale`` (:meth:`~spikecl.cl.plugin.Plugin.lr_factor`). The learning rate is
scaled in the optimiser's parameter groups, not by scaling the loss: for Adam(ax), whose step is invariant
to a constant scale of the gradients, a scaled loss would change nothing.

Measured on the embedded data (progressive split, 3 new classes, 5 epochs each, ``mix=interleaved``): the
old classes' final accuracy was 0.04 with short-time replay at 1:2 (0.22 with ``threshold_scale=0.5``)
against 0.61 with decoded replay, and 0.00 at 1:4 (decoded: 0.46). What the readout learns from T / r
steps does not carry over to full-resolution activity here; tune ``threshold_scale`` and ``lr_scale``
before relying on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Minibatch, Piece, TimeScale
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.replay import Replay
from spikecl.cl.sources import BufferSource
from spikecl.errors import ConfigError
from spikecl.utils import checks


class ShortTimeReplay(Plugin):
    """Replay the buffer's encoded activity at T / r steps with adapted constants (see the module docstring).

    Args:
        threshold_scale: the LIF threshold of replayed minibatches is the model's times this.
        lr_scale: the learning rates of replayed minibatches are the task's times this.
    """

    requires = (Replay,)
    follows = (Replay,)

    def __init__(self, *, threshold_scale: float, lr_scale: float) -> None:
        self.threshold_scale = checks.number("threshold_scale", threshold_scale)
        self.lr_scale = checks.number("lr_scale", lr_scale)
        self._source: BufferSource | None = None

    def check(self, key: str, latent_depth: int | None, plugins: Sequence[Plugin]) -> None:
        replay = next(p for p in plugins if isinstance(p, Replay))
        if replay.mix == "mixed":
            raise ConfigError(f"{key}.plugins: ShortTimeReplay needs replay minibatches of their own; set "
                              f"{key}.plugins.replay.mix=sequential or interleaved, not mixed")

    def before_task(self, ctx: Context, task: int) -> None:
        full = ctx.plugin(Replay).source
        self._source = None if full is None else BufferSource(full.buffer, full.model, full.depth, full.raw_input,
                                                              encoded=True)

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        if self._source is None:
            return
        buffer = self._source.buffer
        ctx.batches = [[Piece(self._source, p.idx, True) if p.replayed and getattr(p.source, "buffer", None) is buffer
                        else p for p in pieces] for pieces in ctx.batches]

    def _short(self, pieces: Minibatch) -> bool:
        """Whether ``pieces`` is a minibatch of short-time replay."""
        short = [p.source is self._source for p in pieces]
        if self._source is None or not any(short):
            return False
        if not all(short):
            raise ValueError("a minibatch mixes short-time replay with full-resolution samples")
        return True

    def dynamics(self, ctx: Context, pieces: Minibatch) -> TimeScale | None:
        return TimeScale(self._source.ratio, self.threshold_scale) if self._short(pieces) else None

    def lr_factor(self, ctx: Context, pieces: Minibatch) -> float:
        return self.lr_scale if self._short(pieces) else 1.0

    def after_task(self, ctx: Context, task: int) -> None:
        self._source = None
