"""What the continual-learning loop and its plugins work with: :class:`Context`, and the training :class:`Timer`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from spikecl.cl.compression import Compression
from spikecl.cl.loss import SpikeRegulariser
from spikecl.cl.minibatch import Minibatch, Source
from spikecl.data import SpikeDataset, Task

T = TypeVar("T")


class Timer:
    """Wall time spent in training steps only (evaluation excluded), for samples/s figures."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.samples = 0

    def run(self, fn: Callable[[], tuple[float, int]]) -> float:
        """Call ``fn`` (returns mean loss, samples) and account for its time; returns the loss."""
        start = time.perf_counter()
        loss, seen = fn()
        self.seconds += time.perf_counter() - start
        self.samples += seen
        return loss

    @property
    def rate(self) -> float:
        """Samples per second (NaN before any training)."""
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class Context:
    """The experiment as the loop and its plugins see it.

    Fixed for the whole experiment: ``model``, ``data``, ``tasks``, ``device``, ``seed``, ``compression``
    (how replay buffers store activity), ``reg`` (the spike regulariser), ``progress``, ``timer``
    (training time and samples) and ``on_epoch`` (called by the loop after every epoch of a task with the
    task, the epoch and the mean training loss; the experiment evaluates there).

    Set by the loop for the phase that trains a task: ``task``, ``latent_depth`` (None: every layer trains
    from raw input; d: the layers below d are frozen), ``batch_size``, ``plugins`` (the running strategy's,
    in hook order; :meth:`plugin` finds one), ``lr_key`` (the config key of the learning rate, for
    messages), ``optimizer``, ``trainable`` (the parameters it updates), ``new`` (the task's new data as a
    source at the entry depth), ``rng`` (the task's generator for minibatch order) and ``batches`` (the
    current epoch's minibatches, which ``before_epoch`` hooks may rewrite).
    """

    model: nn.Module
    data: SpikeDataset
    tasks: list[Task]
    device: torch.device
    seed: int
    compression: Compression | None = None
    reg: SpikeRegulariser = field(default_factory=SpikeRegulariser)
    progress: bool = False
    timer: Timer = field(default_factory=Timer)
    on_epoch: Callable[[int, int, float], Any] = lambda task, epoch, loss: None

    task: int = -1
    latent_depth: int | None = None
    batch_size: int = 1
    plugins: Sequence[Any] = ()
    lr_key: str = "strategy.lr"
    optimizer: torch.optim.Optimizer | None = None
    trainable: list[nn.Parameter] = field(default_factory=list)
    new: Source | None = None
    rng: np.random.Generator | None = None
    batches: list[Minibatch] = field(default_factory=list)

    @property
    def entry_depth(self) -> int:
        """Depth of the entry activity the phase trains from: 0 (the input current) when nothing is frozen."""
        return 0 if self.latent_depth is None else self.latent_depth

    def plugin(self, kind: type[T]) -> T | None:
        """The running strategy's first plugin that is a ``kind``, or None."""
        return next((p for p in self.plugins if isinstance(p, kind)), None)
