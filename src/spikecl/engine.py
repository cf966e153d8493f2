"""Training steps, epochs and evaluation shared by pretraining and every continual-learning strategy.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from spikecl.data import BinnedSpikes
from spikecl.errors import TrainingDiverged
from spikecl.models.lif import RSNN, class_scores

log = logging.getLogger(__name__)


class Source(Protocol):
    """Samples that can enter the network at the training depth."""

    labels: Tensor  # int64 [N] on the training device

    def __len__(self) -> int: ...

    def entry(self, idx: np.ndarray) -> Tensor:
        """Entry activity [B, T, H] of samples ``idx`` (positions in this source)."""


@dataclass
class Part:
    """Positions ``idx`` of ``source`` that belong to one minibatch."""

    source: Source
    idx: np.ndarray


def show_progress(setting: bool | str) -> bool:
    """Progress bars: ``auto`` shows them only when stderr is a terminal."""
    if isinstance(setting, str) and setting == "auto":
        return sys.stderr.isatty()
    return bool(setting)


def spike_regulariser(spikes: Tensor, reg_l1: float, reg_l2: float) -> Tensor | float:
    """Paper's regularisers on the last hidden layer: L1 on the total count, L2 on per-neuron counts."""
    if reg_l1 == 0 and reg_l2 == 0:
        return 0.0
    per_neuron = spikes.sum(dim=(0, 1))
    return reg_l1 * per_neuron.sum() + reg_l2 * per_neuron.square().mean()


def train_epoch(model: RSNN, optimizer: torch.optim.Optimizer, batches: Sequence[Sequence[Part]], depth: int,
                reg: tuple[float, float] = (0.0, 0.0), progress: bool = False, desc: str = "") -> tuple[float, int]:
    """One pass over ``batches``, one optimiser step each; returns the mean loss and the samples seen.

    ``depth`` is where the entry activity comes in (0: input currents, d: spikes of hidden layer d).
    """
    model.train()
    total, seen = 0.0, 0  # a tensor on the device after the first step: reading it every step would sync a GPU
    for parts in tqdm(batches, desc=desc, leave=False, disable=not progress):
        z = torch.cat([p.source.entry(p.idx) for p in parts]) if len(parts) > 1 else parts[0].source.entry(parts[0].idx)
        y = torch.cat([p.source.labels[p.idx] for p in parts])
        out, spikes = model.from_latent(z, depth, return_spikes=True)
        loss = F.nll_loss(F.log_softmax(class_scores(out), dim=1), y) + spike_regulariser(spikes, *reg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total = total + loss.detach() * len(y)
        seen += len(y)
    return float(total) / max(seen, 1), seen


def check_finite(loss: float, phase: str, task: int, epoch: int, lr_key: str) -> None:
    """Stop with a clear message when the loss is NaN or infinite."""
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"loss became {loss} in phase {phase!r}, task {task}, epoch {epoch}: training diverged; "
            f"lower the learning rate ({lr_key}) and run again (results written so far are kept)")


def minibatches(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive slices of ``batch_size`` (the last one may be smaller: no sample is dropped)."""
    return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]


def plan_epoch(new: Source, replay: Source | None, batch_size: int, mix: str,
               rng: np.random.Generator) -> list[list[Part]]:
    """Minibatches of one epoch. Order within each source is reshuffled every epoch from ``rng``.

    sequential: all new batches, then all replay batches (the paper); interleaved: new and replay batches
    alternate; mixed: every minibatch holds new and replayed samples in the ratio of their counts.
    """
    new_b = minibatches(rng.permutation(len(new)), batch_size)
    if replay is None or len(replay) == 0:
        return [[Part(new, b)] for b in new_b]
    rep_idx = rng.permutation(len(replay))
    if mix == "sequential":
        return [[Part(new, b)] for b in new_b] + [[Part(replay, b)] for b in minibatches(rep_idx, batch_size)]
    if mix == "interleaved":
        rep_b = minibatches(rep_idx, batch_size)
        out: list[list[Part]] = []
        for i in range(max(len(new_b), len(rep_b))):
            out += [[Part(new, new_b[i])]] if i < len(new_b) else []
            out += [[Part(replay, rep_b[i])]] if i < len(rep_b) else []
        return out
    if mix == "mixed":
        n_batches = math.ceil((len(new) + len(replay)) / batch_size)
        new_parts = np.array_split(rng.permutation(len(new)), n_batches)
        rep_parts = np.array_split(rep_idx, n_batches)
        return [[p for p in (Part(new, a), Part(replay, b)) if len(p.idx)] for a, b in zip(new_parts, rep_parts)]
    raise ValueError(f"unknown mix {mix!r}")


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
