"""Bias correction of the new classes' scores, fitted on held-out samples (after BiC: Wu et al. 2019, "Large
scale incremental learning"), in the form spikecl's readout allows exactly.

A class score is the maximum over time of the readout record, s_c = max_t out_c[t], and the record is linear in
the class's readout column: scaling the column by a > 0 scales the whole record, hence s_c, by exactly a
(``RSNN.scale_class_columns``). After each task t that brings new classes N_t, their scores are corrected as

    s_c <- a * s_c   for c in N_t,     a = argmin_a  1 / |H| * sum_{i in H} CE( s'_i(a), y_i ),

one factor for all new classes of the task (BiC's a; its offset b has no exact counterpart in the readout's
own parameters), the cross-entropy taken over the classes seen so far and H a **held-out** set: ``holdout``
train samples of every class seen so far, kept out of the task's training. The old classes' held-out samples
are stored samples of the :class:`~spikecl.cl.plugins.replay.Replay` buffer that the task does not replay
(they were learned in earlier tasks), the new classes' are train samples of the task that it does not train
on; both are drawn when the task starts (stream ``bias_holdout``), at most half of a class's samples. No
validation or test sample is ever used. The loss is convex in a (the new classes' scores are linear in it):
:func:`fit_scale` finds a by bisection on its derivative, from the held-out samples' scores computed once,
and it is then applied to the columns.
The held-out samples stay in the buffer and in the task's data for later tasks; only this task skips them.

Why not weight aligning (``plugin=align``, which scales the new columns to the old columns' mean *norm*):
on real voices with latent replay, after the first learned digit the new column's norm is 0.13 against the
old columns' 0.29, so aligning multiplies its scores by 2.26; but the new column is mostly positive weights
(sum of its weights +1.22; the old columns' sums are about 0), and the inputs it weighs (spikes) are never
negative, so it already scores 4.7 on the old digits' samples against 7.7 for their own class: scaled by
2.26 it wins on almost every sample (validation accuracy 0.69 -> 0.36, 72% of predictions the new digit).
A column's norm does not say how high its class scores, its sum (the direction of the mean activity) does
more; fitting the factor on held-out samples measures the scores themselves.

Consolidation and GDumb train on the buffer in phases of their own, held-out samples included, and weight
aligning corrects the same columns another way: all three are refused with it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Minibatch, Piece
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.align import WeightAlign
from spikecl.cl.plugins.consolidation import Consolidation
from spikecl.cl.plugins.gdumb import GDumb
from spikecl.cl.plugins.params import old_classes
from spikecl.cl.plugins.replay import Replay
from spikecl.models import class_scores
from spikecl.utils import checks, streams

LIMIT = math.log(100.0)  # |log a| at most: a in [1/100, 100]


def held_out(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``per_class`` samples of every class of ``labels`` (at most half of each class),
    drawn at random."""
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.choice(members, size=min(per_class, len(members) // 2), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def fit_scale(scores: Tensor, labels: Tensor, new: list[int], seen: list[int]) -> float:
    """The factor a in [1/100, 100] on the scores of classes ``new`` that minimises the mean cross-entropy over
    the classes ``seen`` of ``scores`` [N, C] with ``labels`` [N].

    The new classes' logits are a * s, so the loss is convex in a and its derivative,
    mean_i sum_{c new} (softmax_c - [y_i = c]) s_ic, grows with a: bisection (in log a) finds where it
    changes sign, or stops at a bound (held-out scores that one factor separates perfectly push a without end;
    1/100 .. 100 is far beyond any factor a score needs).
    """
    s = scores[:, seen].double()
    target = torch.as_tensor([seen.index(int(y)) for y in labels.tolist()], device=s.device)
    is_new = torch.zeros(len(seen), dtype=torch.bool, device=s.device)
    is_new[[seen.index(c) for c in new]] = True
    onehot = F.one_hot(target, len(seen)).double()

    def slope(log_a: float) -> float:
        p = torch.softmax(torch.where(is_new, s * math.exp(log_a), s), dim=1)
        return float(((p - onehot) * s)[:, is_new].sum(dim=1).mean())

    low, high = -LIMIT, LIMIT
    if slope(high) <= 0:
        return math.exp(high)
    if slope(low) >= 0:
        return math.exp(low)
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if slope(mid) < 0 else (low, mid)
    return math.exp((low + high) / 2)


class BiasCorrection(Plugin):
    """Fit one factor on the new classes' scores on held-out samples after every task (module docstring).

    Args:
        holdout: held-out samples per class seen so far (at most half of a class's samples in the buffer or
            in the task).
    """

    requires = (Replay,)
    excludes = (WeightAlign, Consolidation, GDumb)
    follows = (Replay,)  # filters the minibatches after Replay has mixed its samples in
    stage = 30  # changes the weights after a task: whatever records them sees the corrected ones

    def __init__(self, *, holdout: int) -> None:
        self.holdout = checks.integer("holdout", holdout, 1)
        self.held_buffer = np.zeros(0, dtype=np.int64)  # positions in Replay's buffer held out of this task
        self.held_new = np.zeros(0, dtype=np.int64)     # positions in ctx.new held out of this task
        self.factors: list[float] = []                  # a after every task (1.0 where nothing was fitted)

    def before_task(self, ctx: Context, task: int) -> None:
        new = sorted(set(ctx.tasks[task].classes) - set(old_classes(ctx, task)))
        self.held_new = self.held_buffer = np.zeros(0, dtype=np.int64)
        if not new:  # nothing to correct after this task: every sample trains
            return
        rng = streams.bias_holdout(ctx.seed, task)
        labels = ctx.new.labels.cpu().numpy()
        candidates = np.flatnonzero(np.isin(labels, new))
        self.held_new = candidates[held_out(labels[candidates], self.holdout, rng)]
        self.held_buffer = held_out(ctx.plugin(Replay).source.labels.cpu().numpy(), self.holdout, rng)

    def before_epoch(self, ctx: Context, task: int, epoch: int) -> None:
        replay = ctx.plugin(Replay)
        ctx.batches = [b for b in (self._without_held(ctx, replay, pieces) for pieces in ctx.batches) if b]

    def _without_held(self, ctx: Context, replay: Replay, pieces: Minibatch) -> Minibatch:
        kept = []
        for piece in pieces:
            held = self.held_buffer if piece.source is replay.source else self.held_new if piece.source is ctx.new else None
            idx = piece.idx if held is None else piece.idx[~np.isin(piece.idx, held)]
            if len(idx):
                kept.append(Piece(piece.source, idx, piece.replayed))
        return kept

    @torch.inference_mode()
    def after_task(self, ctx: Context, task: int) -> None:
        old = old_classes(ctx, task)
        new = sorted(set(ctx.tasks[task].classes) - set(old))
        replay = ctx.plugin(Replay)
        if not new or not len(self.held_new) or not len(self.held_buffer):
            self.factors.append(1.0)
            return
        depth = ctx.entry_depth
        parts = [(replay.source, self.held_buffer), (ctx.new, self.held_new)]
        scores = torch.cat([class_scores(ctx.model.from_latent(src.entry(idx), depth)) for src, idx in parts if len(idx)])
        labels = torch.cat([src.labels[torch.as_tensor(idx, device=src.labels.device)] for src, idx in parts if len(idx)])
        factor = fit_scale(scores, labels, new, sorted(set(old) | set(new)))
        ctx.model.scale_class_columns(new, factor)
        self.factors.append(factor)

    def figures(self, ctx: Context) -> dict[str, Any]:
        return {"bias_factors": self.factors}

    def state_dict(self) -> dict[str, Any]:
        return {"factors": self.factors}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factors = [float(f) for f in state["factors"]]
