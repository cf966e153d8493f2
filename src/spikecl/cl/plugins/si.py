"""Synaptic Intelligence (Zenke, Poole and Ganguli 2017).

While task mu trains, every parameter k accumulates its contribution to the drop of the loss along the
optimiser's path, the path integral

    omega_k += -g_k(t) * delta_k(t)

over the steps t, with g_k(t) the gradient at step t (read in ``after_backward``) and delta_k(t) the update
the optimiser then applied (the parameter's change up to the next ``after_backward``, or to the end of the
epoch for an epoch's last step). g excludes this plugin's own penalty, so that omega measures the task's
loss (the loss the loop trains minus the surrogate below). At the end of the task the importance grows by

    Omega_k += omega_k / ((Delta_k)^2 + xi),    Delta_k = theta_k(end of task) - theta_k(start of task),

and while later tasks train the loss gets the surrogate

    c * sum_k Omega_k (theta_k - theta~_k)^2,   theta~ = the parameters at the start of the current task.

Before the first task it trains, Omega is zero (nothing is known about the pretraining task's path).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch
from spikecl.cl.plugin import Plugin
from spikecl.utils import checks
from spikecl.cl.plugins.params import named_trainable, snapshot, weighted_sq_distance



class SI(Plugin):
    """Synaptic Intelligence (see the module docstring).

    Args:
        c: the surrogate loss's weight.
        xi: damping of the importance where a parameter barely moved during a task.
    """

    _STATE = ("importance", "start", "omega", "grad", "before_step")  # what a checkpoint carries

    def __init__(self, *, c: float, xi: float) -> None:
        self.c, self.xi = checks.number("c", c, positive=False), checks.number("xi", xi)
        self.importance: dict[str, Tensor] = {}   # Omega
        self.start: dict[str, Tensor] = {}        # theta~, the parameters at the start of the task
        self.omega: dict[str, Tensor] = {}        # the running path integral of the task
        self.grad: dict[str, Tensor] = {}         # g of the step whose update is not yet accounted for
        self.before_step: dict[str, Tensor] = {}  # the parameters when that gradient was read

    def before_task(self, ctx: Context, task: int) -> None:
        named = named_trainable(ctx)
        self.start = snapshot(named)
        self.omega = {name: torch.zeros_like(p) for name, p in named}
        self.grad, self.before_step = {}, {}

    def loss(self, ctx: Context, batch: Batch, out: Tensor) -> Tensor | None:
        penalty = weighted_sq_distance(named_trainable(ctx), self.start, self.importance)
        return None if penalty is None else self.c * penalty

    def after_backward(self, ctx: Context, task: int) -> None:
        self._account_update(ctx)
        named = named_trainable(ctx)
        for name, p in named:
            g = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
            if name in self.importance:  # remove d/dtheta of c Omega (theta - theta~)^2
                g.sub_(2 * self.c * self.importance[name] * (p.detach() - self.start[name]))
            self.grad[name] = g
        self.before_step = snapshot(named)

    def after_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        self._account_update(ctx)

    def after_task(self, ctx: Context, task: int) -> None:
        self._account_update(ctx)
        for name, p in named_trainable(ctx):
            delta = p.detach() - self.start[name]
            gain = self.omega[name] / (delta.square() + self.xi)
            self.importance[name] = self.importance[name] + gain if name in self.importance else gain
        self.omega = {}

    def _account_update(self, ctx: Context) -> None:
        """omega += -g * delta for the last step read, delta being the change since its gradient was read."""
        for name, p in named_trainable(ctx):
            if name in self.grad:
                self.omega[name].sub_(self.grad[name] * (p.detach() - self.before_step[name]))
        self.grad, self.before_step = {}, {}

    def state_dict(self) -> dict[str, Any]:
        return {key: dict(getattr(self, key)) for key in self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self._STATE:
            setattr(self, key, dict(state[key]))
