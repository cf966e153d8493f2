"""What a neuron type provides to :class:`~spikecl.models.RSNN`, and what every neuron type shares.

A hidden layer is synapses (the network's: feed-forward ``W`` and recurrent ``V``) and neurons (a
:class:`Neuron` module: their dynamics, parameters and state). Per time step t the network gives the layer's
neurons their input

    h[t] = I[t] + s[t-1] @ V        (I[t]: the feed-forward current of the same step)

and the neurons answer with their spikes s[t]. A neuron type is a subclass of :class:`Neuron` with

- :meth:`Neuron.step`: one time step in plain torch, in the equations' own names: the reference and the
  oracle of the tests (autograd differentiates it);
- :meth:`Neuron.run`: the layer over all steps. The default loops over :meth:`step` with autograd, so a new
  neuron type works with ``step`` alone; the shipped ones override it with a fast loop and a hand-written
  backward pass (:mod:`spikecl.models.neurons.lif`, :mod:`spikecl.models.neurons.adlif`);
- :meth:`Neuron.time_scaled`: its constants for one step standing for r steps (short-time replay);
- its parameters (``nn.Parameter`` attributes, trained with the synapses above a latent depth) and its state
  (``state_names``, all zero at the start of every sample).

The neuron is configured as ``model.neuron`` with ``_target_`` and ``_partial_: true``: the network calls it
with ``width=`` once per hidden layer (docs/extending.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from spikecl.errors import ConfigError
from spikecl.models.sparse import Events, matmul, step_matmul

# The recurrent input s[t-1] @ V of a layer at least this wide is summed over the spikes only (on a CPU, per
# step, while at most EVENT_STEP_DENSITY of the [B, H] spikes are ones): cheaper than the dense product there,
# and the positions it finds give the layer's Events for the products with the next layer for free.
EVENT_MIN_WIDTH = 128
EVENT_STEP_DENSITY = 0.1

State = tuple[Tensor, ...]


class SuperSpike(torch.autograd.Function):
    """H(x): Heaviside step (x > 0) forward, SuperSpike surrogate derivative 1 / (scale * |x| + 1)^2 backward."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.scale = scale
        out = torch.zeros_like(x)
        out[x > 0] = 1.0
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad / (ctx.scale * torch.abs(x) + 1.0) ** 2, None


class Neuron(nn.Module):
    """The neurons of one hidden layer of ``width`` units (see the module docstring).

    Subclasses set ``state_names`` and implement :meth:`step`; they may override :meth:`run` (speed),
    :meth:`time_scaled` (short-time replay) and :meth:`reset_parameters` (initial values of their parameters,
    drawn after the network's weights).
    """

    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = int(width)

    @property
    def state_updates(self) -> int:
        """State variables updated per neuron and step (counted as neuron operations, not synaptic ones)."""
        return len(self.state_names)

    def reset_parameters(self) -> None:
        """Draw the neurons' own parameters afresh (none by default)."""

    def initial_state(self, batch: int, like: Tensor) -> State:
        """The state at the start of a sample: every variable of ``state_names`` zero, [B, H] each."""
        return tuple(like.new_zeros(batch, self.width) for _ in self.state_names)

    def step(self, h: Tensor, state: State) -> tuple[Tensor, State]:
        """One time step: the spikes s[t] [B, H] and the next state from the input h[t] [B, H] and the state."""
        raise NotImplementedError

    def run(self, current: Tensor, recurrent: Tensor | None, product_width: int) -> tuple[Tensor, Events | None]:
        """Spikes [T, B, H] of the layer over all steps of its time-major feed-forward current [T, B, H]
        (``recurrent``: V [H, H] or None), and their :class:`~spikecl.models.sparse.Events` for products of
        total width ``product_width`` with them (None: dense products are cheaper, or nobody consumes them).

        This default runs :meth:`step` in a Python loop under autograd; fast neuron types override it.
        """
        steps, batch, _ = current.shape
        state = self.initial_state(batch, current)
        s = current.new_zeros(batch, self.width)
        spikes = []
        for t in range(steps):
            h = current[t] + s @ recurrent if recurrent is not None and t > 0 else current[t]
            s, state = self.step(h, state)
            spikes.append(s)
        out = torch.stack(spikes)
        return out, Events.of_spikes(out, product_width) if product_width else None

    @contextmanager
    def time_scaled(self, r: float, threshold_scale: float = 1.0) -> Iterator[Neuron]:
        """Inside the block one step stands for ``r`` steps (short-time replay); the neuron's own constants after."""
        raise ConfigError(f"the neuron {type(self).__name__} does not say how its constants scale to r steps "
                          "in one, so it cannot run short-time replay; remove the short_replay plugin")
        yield self  # pragma: no cover - makes this a generator; never reached

    def needs_grad(self, current: Tensor, recurrent: Tensor | None) -> bool:
        """Whether a backward pass will need this run: autograd on and the input, V or a neuron parameter
        takes a gradient."""
        if not torch.is_grad_enabled():
            return False
        return (current.requires_grad or (recurrent is not None and recurrent.requires_grad)
                or any(p.requires_grad for p in self.parameters()))


# ------------------------------------------------------------------------------- shared by the fast loops


class StepInputs:
    """The input h[t] = I[t] + s[t-1] @ V of a per-step loop, event-driven where that pays off.

    ``spikes`` is the loop's output storage [T, B, H]; after writing s[t] the loop calls :meth:`fired`, so
    that with the event-driven recurrence each step's spike positions are found once (and kept: they give
    the layer's Events for the next products for free, :meth:`events`).
    """

    def __init__(self, current: Tensor, recurrent: Tensor | None, spikes: Tensor) -> None:
        steps, batch, width = current.shape
        self.cur, self.spk, self.recurrent, self.batch = current.unbind(0), spikes.unbind(0), recurrent, batch
        event_driven = recurrent is not None and current.device.type == "cpu" and width >= EVENT_MIN_WIDTH
        self.nonzeros: list[np.ndarray] | None = [] if event_driven else None
        self._spikes_np = spikes.numpy() if event_driven else None  # the same memory, scanned by NumPy (fastest)
        self._dense_above = EVENT_STEP_DENSITY * batch * width
        self._h = current.new_empty(batch, width)
        self.spikes = spikes

    def fired(self, t: int) -> None:
        """s[t] is written."""
        if self.nonzeros is not None:
            self.nonzeros.append(np.flatnonzero(self._spikes_np[t] != 0))

    def __call__(self, t: int) -> Tensor:
        """h[t]; I[t] itself (not a copy) where there is no recurrent input. The result may be a scratch
        buffer overwritten by the next call."""
        if self.recurrent is None or t == 0:
            return self.cur[t]
        if self.nonzeros is not None and len(self.nonzeros[t - 1]) <= self._dense_above:
            return step_matmul(self.nonzeros[t - 1], self.recurrent, self.batch).add_(self.cur[t])
        return torch.addmm(self.cur[t], self.spk[t - 1], self.recurrent, out=self._h)

    def events(self, product_width: int) -> Events | None:
        """Events of the spikes for products of total width ``product_width`` where they pay off: from the
        positions the event-driven recurrence found, else by scanning the spikes. The choice depends only on
        the spikes' density and the width, as it does for the same spikes stored and run from (latent replay),
        so both paths add the same numbers in the same order."""
        return spike_events(self.spikes, self.nonzeros, product_width)


def spike_events(spikes: Tensor, nonzeros: list[np.ndarray] | None, product_width: int) -> Events | None:
    """Events of time-major spikes [T, B, H] (see :meth:`StepInputs.events`); ``nonzeros``: each step's spike
    positions if known."""
    if product_width <= 0:
        return None
    if nonzeros is None:
        return Events.of_spikes(spikes, product_width)
    _, batch, width = spikes.shape
    density = sum(len(nz) for nz in nonzeros) / spikes.numel()
    if not Events.pay_off(density, product_width):
        return None
    return Events.from_step_nonzeros(nonzeros, batch, width)


def recurrent_gradient(spikes: Tensor, following: Tensor, events: Events | None) -> Tensor:
    """dL/dV = sum over t of s[t]^T @ dL/dh[t+1]: ``following`` [T*B, H] holds dL/dh[t+1] in row t*B + b."""
    width = spikes.shape[-1]
    if events is not None:
        return events.t_matmul(following)
    return matmul(spikes.reshape(-1, width).t(), following)
