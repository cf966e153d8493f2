"""What training and evaluation share: minibatch parts and sources, the spike regulariser, evaluation.

Training data arrive as :class:`Part` lists: each part is a source of samples (raw SHD input, cached
latents, a replay buffer) with the sample positions it contributes to one minibatch. A source turns its
samples into the network's *entry activity* at the depth where training starts, so new and replayed samples
can share a minibatch, and the frozen layers below that depth are never run inside the training loop.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.data import BinnedSpikes
from spikecl.errors import TrainingDiverged
from spikecl.models.lif import RSNN, class_scores
from spikecl.utils import checks

log = logging.getLogger(__name__)


class Source(Protocol):
    """Samples that can enter the network at the training depth."""

    labels: Tensor  # int64 [N] on the training device

    def __len__(self) -> int: ...

    def entry(self, idx: np.ndarray) -> Tensor:
        """Entry activity [B, T, H] of samples ``idx`` (positions in this source)."""


@dataclass
class Part:
    """Positions ``idx`` of ``source`` that belong to one minibatch; ``replayed`` marks a replay buffer."""

    source: Source
    idx: np.ndarray
    replayed: bool = False


def show_progress(setting: bool | str) -> bool:
    """Progress bars (the ``progress`` key): ``auto`` shows them only when stderr is a terminal."""
    checks.one_of("progress", setting, ("auto", True, False))
    if setting == "auto":
        return sys.stderr.isatty()
    return setting


class SpikeRegulariser:
    """The paper's spike-count regularisers on the last hidden layer (seed-spec 2.6): L1 on the total count,
    L2 on per-neuron counts; the ``loss`` config group as an object (both 0 in every run of the paper)."""

    def __init__(self, reg_l1: float = 0.0, reg_l2: float = 0.0) -> None:
        self.reg_l1 = checks.number("reg_l1", reg_l1, positive=False)
        self.reg_l2 = checks.number("reg_l2", reg_l2, positive=False)

    def __call__(self, spikes: Tensor) -> Tensor | float:
        """The regulariser of last-layer spikes [B, T, H] (0.0 when both weights are 0)."""
        if self.reg_l1 == 0 and self.reg_l2 == 0:
            return 0.0
        per_neuron = spikes.sum(dim=(0, 1))
        return self.reg_l1 * per_neuron.sum() + self.reg_l2 * per_neuron.square().mean()


def check_finite(loss: float, phase: str, task: int, epoch: int, lr_key: str) -> None:
    """Stop with a clear message when the loss is NaN or infinite."""
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"loss became {loss} in phase {phase!r}, task {task}, epoch {epoch}: training diverged; "
            f"lower the learning rate ({lr_key}) and run again (results written so far are kept)")


def minibatches(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive slices of ``batch_size`` (the last one may be smaller: no sample is dropped)."""
    return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]


class EvalSettings:
    """When and how the experiment evaluates: the ``eval`` config group as an object.

    ``batch_size``: samples per inference batch; ``every_epoch``: evaluate the validation parts after every
    training epoch (else only after each task's last epoch); ``test_every_epoch``: the test parts too (for
    the paper's per-epoch figures; otherwise test accuracy is measured only after each task).
    """

    def __init__(self, batch_size: int = 256, every_epoch: bool = True, test_every_epoch: bool = False) -> None:
        self.batch_size = checks.integer("batch_size", batch_size, 1)
        self.every_epoch = checks.boolean("every_epoch", every_epoch)
        self.test_every_epoch = checks.boolean("test_every_epoch", test_every_epoch)


@dataclass
class Evaluation:
    """Predictions of the full network on a set of test samples."""

    indices: np.ndarray      # data-set indices
    labels: np.ndarray
    predictions: np.ndarray
    losses: np.ndarray       # per-sample NLL

    def accuracy(self, mask: np.ndarray | None = None) -> float:
        """Fraction correct over the samples in ``mask`` (all if None); NaN for an empty selection."""
        correct = self.predictions == self.labels
        if mask is not None:
            correct = correct[mask]
        return float(correct.mean()) if len(correct) else float("nan")

    def loss(self, mask: np.ndarray | None = None) -> float:
        """Mean NLL over the samples in ``mask``."""
        values = self.losses if mask is None else self.losses[mask]
        return float(values.mean()) if len(values) else float("nan")

    def subset(self, members: np.ndarray) -> np.ndarray:
        """Mask of the evaluated samples that are in ``members`` (data-set indices)."""
        return np.isin(self.indices, members)


@torch.inference_mode()
def evaluate(model: RSNN, spikes: BinnedSpikes, labels: np.ndarray, indices: np.ndarray, batch_size: int,
             device: torch.device) -> Evaluation:
    """Run the whole network from raw input on ``indices``; no autograd."""
    model.eval()
    preds, losses = [], []
    for b in minibatches(indices, batch_size):
        out = model(spikes.csr(b, device=device), spikes.nb_steps)
        logp = F.log_softmax(class_scores(out), dim=1)
        y = torch.as_tensor(labels[b], device=device)
        preds.append(logp.argmax(dim=1).cpu())
        losses.append(F.nll_loss(logp, y, reduction="none").cpu())
    cat = (lambda xs: torch.cat(xs).numpy()) if preds else (lambda xs: np.zeros(0))
    return Evaluation(indices, labels[indices], cat(preds).astype(np.int64), cat(losses))


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


def frozen_except(model: RSNN, trainable: Iterable[torch.nn.Parameter]) -> None:
    """Make exactly ``trainable`` require gradients."""
    keep = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
