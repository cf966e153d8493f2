"""What the continual-learning loop and its plugins work with: :class:`Context`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from spikecl.data import SpikeDataset, Task
from spikecl.engine import Part, Source, SpikeRegulariser, Timer
from spikecl.models.lif import RSNN

if TYPE_CHECKING:
    from spikecl.cl.compression import Compression
    from spikecl.cl.loop import Strategy


@dataclass
class Context:
    """The experiment as the loop and its plugins see it.

    Fixed for the whole experiment: ``model``, ``data``, ``tasks``, ``device``, ``seed``, ``compression``
    (how replay buffers store activity), ``reg`` (the spike regulariser), ``progress``, ``timer``
    (training time and samples) and ``on_epoch`` (called by the loop after every epoch with the task, the
    epoch and the mean training loss; the experiment evaluates and records there).

    Set by the loop while a task trains: ``strategy`` (the running strategy), ``task`` (its index),
    ``optimizer``, ``trainable`` (the parameters it updates), ``new`` (the task's new data as a source at
    the training depth), ``rng`` (the task's generator for minibatch order) and ``batches`` (the current
    epoch's minibatch plan, which ``before_epoch`` hooks may rewrite).
    """

    model: RSNN
    data: SpikeDataset
    tasks: list[Task]
    device: torch.device
    seed: int
    compression: Compression | None = None
    reg: SpikeRegulariser = field(default_factory=SpikeRegulariser)
    progress: bool = False
    timer: Timer = field(default_factory=Timer)
    on_epoch: Callable[[int, int, float], Any] = lambda task, epoch, loss: None

    strategy: Strategy | None = None
    task: int = -1
    optimizer: torch.optim.Optimizer | None = None
    trainable: list[torch.nn.Parameter] = field(default_factory=list)
    new: Source | None = None
    rng: np.random.Generator | None = None
    batches: list[list[Part]] = field(default_factory=list)
