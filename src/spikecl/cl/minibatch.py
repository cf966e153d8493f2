"""What a minibatch is made of: sources of samples, the pieces of them it holds, and the batch the loop trains.

Training data arrive as minibatches, each a list of :class:`Piece`: the positions of one *source* (raw
input, latents cached for a task, a replay buffer; :mod:`spikecl.cl.sources`) that the minibatch takes. A
source turns its samples into the network's *entry activity* at the depth where training starts, so new
and replayed samples can share a minibatch and the frozen layers below that depth never run inside the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from spikecl.models import class_scores


class Source(Protocol):
    """Samples that can enter the network at the training depth."""

    labels: Tensor  # int64 [N] on the training device

    def __len__(self) -> int: ...

    def entry(self, idx: np.ndarray) -> Tensor:
        """Entry activity [B, T, W] of samples ``idx`` (positions in this source)."""


@dataclass
class Piece:
    """Positions ``idx`` of ``source`` that belong to one minibatch; ``replayed`` marks a replay buffer."""

    source: Source
    idx: np.ndarray
    replayed: bool = False


Minibatch = list[Piece]


def minibatches(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive slices of ``batch_size`` (the last one may be smaller: no sample is dropped)."""
    return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]


class TimeScale(NamedTuple):
    """Dynamics of a minibatch whose one step stands for ``ratio`` steps (short-time replay): the model runs
    under ``model.time_scaled(ratio, threshold_scale)``."""

    ratio: float
    threshold_scale: float = 1.0


@dataclass
class Batch:
    """One minibatch as the loop trains it.

    ``z`` is the entry activity [B, T, W] at ``depth`` (the input current at 0, the spikes of hidden layer d
    at d), ``labels`` the classes [B], ``replayed`` a bool mask [B] of the samples that came from a replay
    buffer, ``spikes`` the last hidden layer's spikes [B, T, H_L] in this forward pass, ``pieces`` the
    minibatch's pieces in the order their rows appear, and ``time_scale`` the dynamics it ran under (None:
    the model's own).
    """

    z: Tensor
    labels: Tensor
    replayed: Tensor
    spikes: Tensor
    depth: int
    pieces: list[Piece] = field(default_factory=list)
    time_scale: TimeScale | None = None

    def scores_of(self, model: nn.Module) -> Tensor:
        """Class scores [B, C] of another network (a frozen teacher, say) on this batch's entry activity,
        under the same dynamics as the network being trained; without autograd."""
        with torch.no_grad():
            if self.time_scale is None:
                return class_scores(model.from_latent(self.z, self.depth))
            with model.time_scaled(*self.time_scale):
                return class_scores(model.from_latent(self.z, self.depth))
