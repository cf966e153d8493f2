"""Helpers shared by the plugins: parameter names, snapshots, quadratic penalties, the classes seen so far."""

from __future__ import annotations


import torch
from torch import Tensor, nn

from spikecl.cl.context import Context



def named_trainable(ctx: Context) -> list[tuple[str, nn.Parameter]]:
    """The parameters the task trains (``ctx.trainable``) with their names in ``ctx.model``.

    State is keyed by name, not by position, so that it survives a checkpoint and a change of the trained set.
    """
    names = {id(p): name for name, p in ctx.model.named_parameters()}
    return [(names[id(p)], p) for p in ctx.trainable]


def snapshot(named: list[tuple[str, nn.Parameter]]) -> dict[str, Tensor]:
    """Detached copies of the parameters' current values."""
    return {name: p.detach().clone() for name, p in named}


def weighted_sq_distance(named: list[tuple[str, nn.Parameter]], anchor: dict[str, Tensor],
                         weight: dict[str, Tensor]) -> Tensor | None:
    """sum_k weight_k (theta_k - anchor_k)^2 over the parameters with a weight and an anchor; None if none has."""
    terms = [(weight[name] * (p - anchor[name]).square()).sum() for name, p in named
             if name in weight and name in anchor]
    return torch.stack(terms).sum() if terms else None


def old_classes(ctx: Context, task: int) -> list[int]:
    """The classes of tasks 0 .. task-1, sorted."""
    return sorted(set().union(*(ctx.tasks[t].classes for t in range(task))))
