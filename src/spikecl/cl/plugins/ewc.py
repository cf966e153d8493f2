"""Online Elastic Weight Consolidation (Kirkpatrick et al. 2017; online form of Schwarz et al. 2018).

After task t, the diagonal of the empirical Fisher information of the task's train data D_t,

    F_t = E_{(x, y) in D_t} [ (d log p(y | x; theta) / d theta)^2 ]    at theta = theta*_t,

joins a running Fisher with decay gamma, F* <- gamma F* + F_t, and theta* becomes the parameters after the
task. While later tasks train, the loss gets the penalty

    lambda / 2 * sum_k F*_k (theta_k - theta*_k)^2

over the trainable parameters. p(y | x) is the softmax of the class scores, as in the training loss.

The expectation is estimated **per minibatch**: each minibatch B of ``batch_size`` samples gives the squared
gradient of its mean log-likelihood, and the minibatches are averaged weighted by their size,
F_t = sum_B |B| / |D_t| * (d mean_{i in B} log p(y_i | x_i) / d theta)^2. ``batch_size=1`` is the exact
per-sample empirical Fisher; larger minibatches cost one backward pass per minibatch and give a smaller
estimate (the sample noise partly averages out in the mean gradient), which ``lambda`` absorbs.
Gradients are taken at the strategy's training depth, from the entry activity of the samples.

The plugin usually runs in the continual-learning phase only, so it never trains the pretraining task
(task 0). Its first ``before_task`` therefore computes F* from the pretraining task's train samples
(``ctx.tasks[0].train``) at the training depth, with theta* the parameters at that moment (the pretrained
ones), when no Fisher exists yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch, Source, minibatches
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.params import named_trainable, snapshot, weighted_sq_distance
from spikecl.cl.sources import RawSource
from spikecl.models import class_scores
from spikecl.errors import ConfigError
from spikecl.utils import checks



def fisher_diagonal(model: nn.Module, source: Source, depth: int, params: list[nn.Parameter],
                    batch_size: int) -> list[Tensor]:
    """Diagonal empirical Fisher of ``params`` over every sample of ``source`` (per-minibatch estimate above).

    Uses :func:`torch.autograd.grad`, so the parameters' ``.grad`` are left as they are.
    """
    n = len(source)
    fisher = [torch.zeros_like(p) for p in params]
    with torch.enable_grad():
        for idx in minibatches(np.arange(n), batch_size):
            log_p = F.log_softmax(class_scores(model.from_latent(source.entry(idx), depth)), dim=1)
            log_lik = log_p.gather(1, source.labels[idx].unsqueeze(1)).mean()
            grads = torch.autograd.grad(log_lik, params, allow_unused=True)
            for f, g in zip(fisher, grads):
                if g is not None:  # a parameter the output does not depend on has zero Fisher
                    f.add_(g.square(), alpha=len(idx) / n)
    return fisher


class EWC(Plugin):
    """Online EWC: a quadratic penalty weighted by the running diagonal Fisher (see the module docstring).

    Args:
        ewc_lambda: lambda, the penalty's weight.
        decay: gamma, how much of the running Fisher each new task keeps (1: plain sum over tasks).
        batch_size: minibatch size of the Fisher estimate (1: exact per-sample Fisher).
    """

    def __init__(self, *, ewc_lambda: float, decay: float, batch_size: int) -> None:
        self.ewc_lambda = checks.number("ewc_lambda", ewc_lambda, positive=False)
        self.decay = checks.number("decay", decay, positive=False)
        if self.decay > 1:
            raise ConfigError(f"decay={decay!r} is not valid; it must be in [0, 1] (1: a plain sum over tasks)")
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.fisher: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def before_task(self, ctx: Context, task: int) -> None:
        if self.fisher or task == 0:
            return
        data, depth = ctx.data, ctx.entry_depth
        # raw input through the layers below the depth, so W1 gets its Fisher too where it trains (depth 0)
        pretraining = RawSource(ctx.model, data.spikes, ctx.tasks[0].train, data.labels, depth, ctx.device)
        self._consolidate(ctx, pretraining)

    def loss(self, ctx: Context, batch: Batch, out: Tensor) -> Tensor | None:
        penalty = weighted_sq_distance(named_trainable(ctx), self.anchor, self.fisher)
        return None if penalty is None else self.ewc_lambda / 2 * penalty

    def after_task(self, ctx: Context, task: int) -> None:
        self._consolidate(ctx, ctx.new)

    def _consolidate(self, ctx: Context, source: Source) -> None:
        """F* <- gamma F* + F(source); theta* <- the current parameters."""
        named = named_trainable(ctx)
        new = fisher_diagonal(ctx.model, source, ctx.entry_depth, [p for _, p in named], self.batch_size)
        for (name, _), f in zip(named, new):
            self.fisher[name] = self.decay * self.fisher[name] + f if name in self.fisher else f
        self.anchor = snapshot(named)

    def state_dict(self) -> dict[str, Any]:
        return {"fisher": dict(self.fisher), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fisher, self.anchor = dict(state["fisher"]), dict(state["anchor"])
